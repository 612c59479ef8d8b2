"""Bad configs never crash `privaudit run`: exit 2 naming the field, or success — and
`--dry-run` (config, data and requests checked, estimate printed) writes nothing.

Hypothesis drives the real CLI entry point with mutated configs (wrong types, unknown keys,
out-of-range and huge numbers at every path of the tiny config), random YAML trees and raw
bytes; the hostile files a user can hand over (alias bombs, recursive aliases, deep nesting,
non-UTF-8, 5000-digit integers, NUL in a path) are checked one by one.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privaudit.audit.config import AuditConfig, config_from_dict
from privaudit.core.errors import ConfigError
from privaudit.core.params import merge_patch
from tests.audit.bad_input_helpers import TREES, assert_contract, run_main, yaml_bytes
from tests.conftest import TINY

FAST = settings(max_examples=50, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _paths(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in tree.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out += _paths(value, (*prefix, key))
    return out


# every path of the tiny config and of the full default config (every section, every knob)
PATHS = sorted(set(_paths(TINY)) | set(_paths(AuditConfig().model_dump(mode="json"))))


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(tree)
    node = out
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return out


def _dry_run(blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.yaml"
        cfg.write_bytes(blob)
        out = Path(tmp) / "run"
        outcome = run_main("run", cfg, "--out", out, "--dry-run")
        assert_contract(outcome)
        assert not out.exists(), "--dry-run wrote into the run directory"
        if outcome.code == 0:
            assert "estimate:" in outcome.err


@FAST
@given(path=st.sampled_from(PATHS), value=TREES)
def test_a_mutated_config_exits_2_naming_the_field_or_validates(
    path: tuple[str, ...], value: Any
) -> None:
    _dry_run(yaml_bytes(_set(TINY, path, value)))


@FAST
@given(path=st.sampled_from(PATHS), key=st.text(min_size=1, max_size=10))
def test_an_unknown_key_anywhere_is_refused_naming_it(path: tuple[str, ...], key: str) -> None:
    parent = path[:-1]
    cfg = _set(TINY, (*parent, f"zz{key}"), 1)
    outcome = run_main_on(cfg)
    assert_contract(outcome, allowed=(2,))
    assert "unknown key" in outcome.err or "must be" in outcome.err


def run_main_on(cfg: Any) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_bytes(yaml_bytes(cfg))
        return run_main("run", path, "--out", Path(tmp) / "run", "--dry-run")


@settings(max_examples=40, deadline=None)
@given(tree=TREES)
def test_a_random_yaml_tree_as_the_whole_config(tree: Any) -> None:
    _dry_run(yaml_bytes(tree))


@settings(max_examples=40, deadline=None)
@given(blob=st.binary(max_size=200))
def test_random_bytes_as_the_config(blob: bytes) -> None:
    _dry_run(blob)


BOMB = b"""\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.mark.parametrize(
    ("blob", "says"),
    [
        (BOMB, "too large once its aliases are expanded"),
        (b"a: &a [*a]\n", "refers to itself"),
        (b"&a [1, *a]\n", "refers to itself"),
        (b"[" * 3000 + b"]" * 3000, "nested"),
        (b"seed: " + b"9" * 5000 + b"\n", "not valid YAML"),
        ("name: café\n".encode("latin-1"), "not UTF-8"),
        ("name: x\n".encode("utf-16"), "not UTF-8"),
        (b"name: a\n---\nname: b\n", "not valid YAML"),
        (b"name: \"\\ud800\"\n", "not valid Unicode"),
        (b"data: {source: file, path: \"a\\0b.jsonl\"}\n", "data.path"),
        (b"report: {sign_key: \"k\\0ey.pem\"}\n", "report.sign_key"),
        (b"seed: 99999999999999999999999\n", "seed"),
        (b"federation: {clients: 1000000000000}\n", "federation.clients"),
        (b"data: {synthetic: {subjects: 1000000000000}}\n", "data.synthetic.subjects"),
        (b"federation: {rounds: .inf}\n", "federation.rounds"),
        (b"federation: {learning_rate: .nan}\n", "federation.learning_rate"),
        (b"- a list\n", "must be a mapping"),
        (b"\t name: x\n", "not valid YAML"),
    ],
)
def test_hostile_config_files_exit_2_naming_the_problem(blob: bytes, says: str,
                                                         tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_bytes(blob)
    outcome = run_main("run", cfg, "--out", tmp_path / "run", "--dry-run")
    assert_contract(outcome, allowed=(2,))
    assert says in outcome.err
    assert not (tmp_path / "run").exists()


def test_an_empty_config_file_is_the_default_config_and_a_bom_is_allowed(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_bytes(b"")
    outcome = run_main("config", "validate", empty)
    assert_contract(outcome, allowed=(0,))
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + yaml.safe_dump(TINY).encode())
    assert_contract(run_main("run", bom, "--out", tmp_path / "run", "--dry-run"), allowed=(0,))


@settings(max_examples=40, deadline=None)
@given(path=st.sampled_from(PATHS), value=TREES)
def test_every_accepted_config_writes_and_reloads_as_itself(
    path: tuple[str, ...], value: Any
) -> None:
    """What the run writes as config.yaml (the resolved config) is valid UTF-8 YAML that
    validates to the same config — a config that passes never breaks the run directory."""
    try:
        cfg = config_from_dict(_set(TINY, path, value))
    except ConfigError:
        return
    text = cfg.to_yaml()
    text.encode("utf-8")
    again = config_from_dict(yaml.safe_load(text))
    assert again.sha256() == cfg.sha256()


@pytest.mark.parametrize("override", [{"privacy": "y"}, {"federation": 3}, {"privacy": None},
                                      {"privacy": {"dp": "z"}}, {"federation": {"rounds": -1}}])
def test_a_malformed_reference_override_names_the_field(override: dict[str, Any]) -> None:
    """`overrides: {privacy: y}` crashed the attack checks (TypeError) before the fix."""
    cfg = _set(TINY, ("attacks", "references", "overrides"), override)
    cfg["attacks"]["references"]["count"] = 2
    outcome = run_main_on(cfg)
    assert_contract(outcome, allowed=(2,))
    assert "attacks.references" in outcome.err


def _attack_params() -> dict[str, list[str]]:
    from privaudit.attacks.scores.base import ATTACKS, available_attacks

    return {n: sorted(ATTACKS.get(n).Params.model_fields) for n in available_attacks()}


ATTACK_PARAMS = _attack_params()


@st.composite
def batteries(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(ATTACK_PARAMS)) | st.text(max_size=6))
        keys = ATTACK_PARAMS.get(name) or ["mode"]
        params = draw(st.dictionaries(st.sampled_from([*keys, "bogus"]), TREES, max_size=3))
        spec: dict[str, Any] = {"name": name, "params": params}
        if draw(st.booleans()):
            spec["label"] = draw(st.text(max_size=6) | TREES)
        out.append(spec)
    return out


@FAST
@given(battery=batteries(), count=st.sampled_from([0, 2, 4]),
       overrides=st.dictionaries(st.sampled_from(["federation", "privacy"]), TREES, max_size=2))
def test_a_random_attack_battery_and_reference_overrides(
    battery: list[dict[str, Any]], count: int, overrides: dict[str, Any]
) -> None:
    cfg = copy.deepcopy(TINY)
    cfg["attacks"] = {"battery": battery, "bootstrap": 10,
                      "references": {"count": count, "overrides": overrides}}
    _dry_run(yaml_bytes(cfg))


def _numeric_paths(model: type[Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every int or float field of the config schema, nested sections included (optional
    ones too: ``privacy.dp.noise_multiplier`` is None by default)."""
    import typing

    from pydantic import BaseModel

    out: list[tuple[str, ...]] = []
    for name, info in model.model_fields.items():
        args = typing.get_args(info.annotation) or (info.annotation,)
        sections = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if sections:
            out += _numeric_paths(sections[0], (*prefix, name))
        elif any(a in (int, float) for a in args):
            out.append((*prefix, name))
    return out


NUMERIC_PATHS = _numeric_paths(AuditConfig)
NON_FINITE = st.sampled_from([float("inf"), float("-inf"), float("nan")])


@FAST
@given(path=st.sampled_from(NUMERIC_PATHS), value=NON_FINITE)
def test_a_non_finite_number_in_any_numeric_field_is_refused_naming_it(
    path: tuple[str, ...], value: float
) -> None:
    """Infinity and NaN are never a setting: every numeric field of every section refuses
    them, naming the field (issue 17: `.inf` noise hung the accountant)."""
    outcome = run_main_on(_set(TINY, path, value))
    assert_contract(outcome, allowed=(2,))
    assert ".".join(path) + ":" in outcome.err, outcome.err


def test_the_numeric_paths_cover_the_privacy_fields() -> None:
    for path in [("privacy", "dp", "noise_multiplier"), ("privacy", "dp", "max_grad_norm"),
                 ("privacy", "dp", "clip_norm"), ("privacy", "dp", "target_epsilon"),
                 ("secure_aggregation", "min_clients"), ("federation", "learning_rate")]:
        assert path in NUMERIC_PATHS


OUT_PATHS = st.sampled_from(["FILE", "FILE/run", "FILE/a/b", "/dev/null/run", "DIR", "DIR/new",
                             "DIR/new/deeper", "/proc/1/nope/run"])


@settings(max_examples=20, deadline=None)
@given(out=OUT_PATHS, bad_config=st.booleans())
def test_any_out_path_is_used_or_refused_naming_the_option(out: str, bad_config: bool) -> None:
    """`run --out`: a path that cannot be a directory is exit 2 naming --out, before any work
    (a bad config is named first: it is read before the options are acted on); nothing is
    created or changed either way."""
    with tempfile.TemporaryDirectory() as tmp:
        afile, adir = Path(tmp) / "afile", Path(tmp) / "adir"
        afile.write_text("x", encoding="utf-8")
        adir.mkdir()
        target = Path(out.replace("FILE", str(afile)).replace("DIR", str(adir)))
        cfg = Path(tmp) / "config.yaml"
        cfg.write_bytes(yaml_bytes(merge_patch(TINY, {"federation": {"rounds": 0}})
                                   if bad_config else TINY))
        outcome = run_main("run", cfg, "--out", target, "--dry-run")
        assert_contract(outcome)
        if bad_config:
            assert outcome.code == 2 and "federation.rounds: " in outcome.err
        elif out.startswith("DIR"):
            assert outcome.code == 0, outcome.text
        else:
            assert outcome.code == 2 and "--out: " in outcome.err, outcome.err
        assert afile.read_text(encoding="utf-8") == "x"
        assert list(adir.iterdir()) == []
