"""Writes ``memorise.jsonl``: the records of the memorising fixture (``tests/conftest.py``).

The synthetic corpus (90 subjects, 2–3 records each, seed 3) with every label the message's
topic, except a seeded ``RELABELLED`` fraction of records whose label is one of the other
departments: nothing in the wording predicts those, so a model fits them only by memorising
the record, and a held-out one has a high loss. The file is committed, so the fixture does not
change when Faker's generators do. Run ``python -m tests.data.make_memorise`` to rewrite it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from privaudit.mechanisms.data.corpus import LABELS, generate_corpus

PATH = Path(__file__).with_name("memorise.jsonl")
RELABELLED = 0.5


def main() -> None:
    records = generate_corpus(subjects=90, min_records=2, max_records=3, seed=3)
    rng = random.Random(3)
    lines = []
    for r in records:
        label = r.label
        if rng.random() < RELABELLED:
            label = rng.choice([x for x in LABELS if x != r.label])
        lines.append(json.dumps({"id": r.id, "subject_id": r.subject_id, "text": r.text,
                                 "label": label}, ensure_ascii=False))
    PATH.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
