"""The install is reproducible: constraints.txt pins every distribution installed beside
privaudit, at the version installed, so a fresh clone next month gets the same packages."""

from __future__ import annotations

import re
import sysconfig
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

LOCK = Path(__file__).resolve().parents[1] / "constraints.txt"
#: the installer's own tools and the project itself; pip is pinned in the Makefile
NOT_LOCKED = {"pip", "setuptools", "wheel", "privaudit"}


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9._-]+)==(\S+)", line)
        if m:
            pins[canonicalize_name(m[1])] = m[2]
    return pins


def test_the_lock_pins_every_package_to_one_release() -> None:
    text = LOCK.read_text()
    requirement_lines = [ln for ln in text.splitlines() if ln and not ln.lstrip().startswith("#")]
    assert requirement_lines, "constraints.txt pins nothing"
    loose = [ln for ln in requirement_lines if "==" not in ln]
    assert not loose, f"constraints.txt has unpinned lines: {loose}"
    assert _pins()["torch"].startswith("2.13.0"), "torch must stay at 2.13.0 (its CPU build)"


def test_every_installed_distribution_is_the_release_the_lock_pins() -> None:
    pins = _pins()
    # the environment's own site-packages (a test may put other folders on sys.path)
    site = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    installed = {canonicalize_name(d.metadata["Name"]): d.version
                 for d in metadata.distributions(path=site)}
    missing = sorted(n for n in installed if n not in pins and n not in NOT_LOCKED)
    assert not missing, f"installed but not in constraints.txt (run `make lock`): {missing}"
    drifted = {n: (v, pins[n]) for n, v in installed.items() if n in pins and v != pins[n]}
    assert not drifted, f"installed release differs from the lock (installed, locked): {drifted}"
