"""Where two report.json files differ, field by field, ignoring what differs on every run.

    .venv/bin/python scripts/report_diff.py A/report.json B/report.json

Prints one line per differing field (its JSON path, both values, and for numbers the
relative difference), then a summary: how many fields differ, the largest relative
difference among numbers, and whether anything but numbers differs. Timing (``seconds``,
``*_seconds``, ``speedup*``), the creation time, hashes of the report itself and the listing
of artifacts are skipped: they differ between any two runs. Exit 0 when nothing else
differs, 1 otherwise. Used to show what a change that alters report digests actually
changed (README, "Behaviour unchanged").
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

_SKIP_KEYS = {"created_at", "report_sha256", "artifacts", "seconds", "reused"}


def _skipped(key: str) -> bool:
    return key in _SKIP_KEYS or key.endswith("_seconds") or key.startswith("speedup")


def _walk(a: Any, b: Any, path: str, out: list[tuple[str, Any, Any]]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if not _skipped(key):
                _walk(a.get(key), b.get(key), f"{path}/{key}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _walk(x, y, f"{path}/{i}", out)
    elif a != b and not (isinstance(a, float) and isinstance(b, float)
                         and math.isnan(a) and math.isnan(b)):
        out.append((path, a, b))


def _relative(a: Any, b: Any) -> float | None:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    if not (isinstance(a, numbers) and isinstance(b, numbers)):
        return None
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale else 0.0


def main(left: str, right: str) -> int:
    with open(left, encoding="utf-8") as fa, open(right, encoding="utf-8") as fb:
        diffs: list[tuple[str, Any, Any]] = []
        _walk(json.load(fa), json.load(fb), "", diffs)
    worst, other = 0.0, 0
    for path, a, b in diffs:
        rel = _relative(a, b)
        if rel is None:
            other += 1
            print(f"{path}: {a!r} -> {b!r}")
        else:
            worst = max(worst, rel)
            print(f"{path}: {a!r} -> {b!r} (relative {rel:.2e})")
    print(f"{len(diffs)} field(s) differ; largest relative difference of a number {worst:.2e}; "
          f"{other} non-numeric difference(s)")
    return 1 if other else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
