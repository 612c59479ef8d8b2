"""Safe loading: no pickle anywhere, YAML only through SafeLoader, no write outside the run.

- The source never imports pickle (or dill/joblib/cloudpickle), never calls ``torch.load``
  without ``weights_only=True``, never ``yaml.load``/``unsafe_load``, never
  ``np.load(allow_pickle=True)`` (checked on the syntax tree of every module).
- A YAML ``!!python/...`` tag in a config, a request or a policy is refused (exit 2) and runs
  nothing.
- A request id or any id that names a path (``../../x``) is refused naming the field; the run
  directory refuses any path that resolves outside it.
- The Flower deployment export is JSON + safetensors + CKKS context bytes; a silo and the
  server rebuilt from it train bit-identically to the in-memory federation.
"""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import privaudit
from privaudit.audit.config import config_from_dict
from privaudit.core.errors import ConfigError
from privaudit.core.rundir import RunDir
from tests.audit.bad_input_helpers import assert_contract, run_main
from tests.conftest import TINY, merge

PACKAGE = Path(privaudit.__file__).parent
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            out.append((ast.unparse(node.func), node))
    return out


def _kw(call: ast.Call, name: str) -> Any:
    for kw in call.keywords:
        if kw.arg == name:
            return ast.literal_eval(kw.value) if isinstance(kw.value, ast.Constant) else "?"
    return None


def test_no_module_loads_pickles_or_unsafe_yaml() -> None:
    findings: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(PACKAGE.parent).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            else:
                continue
            if names & UNSAFE_MODULES:
                findings.append(f"{where}:{node.lineno}: imports {sorted(names & UNSAFE_MODULES)}")
        for name, call in _calls(tree):
            line = f"{where}:{call.lineno}: {name}"
            if name.endswith("torch.load") and _kw(call, "weights_only") is not True:
                findings.append(f"{line} without weights_only=True")
            if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all"):
                findings.append(line)
            if name.endswith("np.load") and _kw(call, "allow_pickle") not in (None, False):
                findings.append(f"{line} with allow_pickle")
            if name in ("torch.save",):
                findings.append(f"{line} (a pickle)")
    assert findings == []


def test_the_checker_would_catch_a_pickle() -> None:
    bad = ast.parse("import pickle\nimport torch\ntorch.load('x.pt', weights_only=False)\n")
    names = [name for name, _ in _calls(bad)]
    assert "torch.load" in names
    assert _kw(_calls(bad)[0][1], "weights_only") is False


PYTHON_TAG = "!!python/object/apply:os.system ['touch {marker}']"


@pytest.mark.parametrize("where", ["config", "request", "policy"])
def test_a_python_yaml_tag_is_refused_and_runs_nothing(where: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    doc = f"name: {PYTHON_TAG.format(marker=marker)}\n"
    path = tmp_path / "file.yaml"
    path.write_text(doc, encoding="utf-8")
    if where == "config":
        outcome = run_main("run", path, "--out", tmp_path / "run", "--dry-run")
    elif where == "request":  # the CLI reads it after opening a finished run: see
        from privaudit.unlearning.requests import load_requests  # test_bad_input_requests

        with pytest.raises(ConfigError, match="not valid YAML"):
            load_requests(path)
        assert not marker.exists()
        return
    else:
        report = tmp_path / "report.json"
        report.write_text("{}")
        outcome = run_main("gate", report, "--policy", path)
    assert_contract(outcome, allowed=(2,))
    assert "not valid YAML" in outcome.err
    assert not marker.exists()


@pytest.mark.parametrize("bad_id", ["../../x", "../x", "a/b", "/abs", "..", ".hidden", "a\\b"])
def test_a_request_id_that_names_a_path_is_refused_naming_the_field(bad_id: str) -> None:
    cfg = merge(TINY, {"unlearning": {"requests": [
        {"id": bad_id, "kind": "record", "ids": ["s00001-r0"]}]}})
    with pytest.raises(ConfigError) as info:
        config_from_dict(cfg)
    assert any(p.startswith("unlearning.requests.0.id: String should match pattern")
               for p in info.value.problems), info.value.problems


def test_the_run_directory_refuses_a_path_outside_it(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run").create()
    assert run.path("models", "oracle", "req-1") == (tmp_path / "run/models/oracle/req-1"
                                                       ).resolve()
    for parts in (("..", "x"), ("models", "..", "..", "x"), ("/etc", "passwd")):
        with pytest.raises(ConfigError, match="escapes the run directory"):
            run.path(*parts)


def test_an_out_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    outcome = run_main("run", cfg, "--out", blocker)
    assert_contract(outcome, allowed=(2,))
    assert "--out: exists and is not a directory" in outcome.err
    assert blocker.read_text() == "x"


# -- the Flower deployment export -----------------------------------------------------------


DEPLOY = {"federation": {"clients": 3, "rounds": 2},
          "secure_aggregation": {"enabled": True, "masking": "none"},
          "privacy": {"dp": {"mode": "record", "noise_multiplier": 0.8, "delta": 1e-3}}}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("flwr")
    from privaudit.audit import flower_export
    from privaudit.mechanisms.federated.flower import deploy

    cfg = config_from_dict(merge(TINY, DEPLOY))
    out = tmp_path_factory.mktemp("job")
    sides = flower_export.prepare_sides(cfg, out)
    deploy.write_sides(sides, out)
    return sides, out


def test_the_deployment_export_holds_no_pickle(exported: Any) -> None:
    _, out = exported
    files = [p for p in out.rglob("*") if p.is_file()]
    suffixes = {p.suffix for p in files}
    assert suffixes <= {".json", ".safetensors", ".ctx", ".toml", ".py"}, suffixes
    assert not any(p.read_bytes()[:2] in (b"\x80\x02", b"\x80\x04", b"PK") for p in files
                   if p.suffix != ".ctx")
    silo = json.loads((out / "silo-0" / "silo.json").read_text())
    assert set(silo["config"]) == {"seed", "model", "federation", "privacy",
                                   "secure_aggregation"}  # no data paths, no requests
    assert not (out / "server" / "ckks-client.ctx").exists()  # the server has no secret key


def test_a_silo_rebuilt_from_its_files_trains_bit_identically(exported: Any) -> None:
    from privaudit.mechanisms.federated.flower import deploy

    sides, out = exported
    for index, client in enumerate(sides.clients.order):
        silo = deploy.load_silo(out / f"silo-{index}")
        assert silo.order == [client]
        assert list(silo.clients) == [client]  # its own data only
        mine, theirs = silo.clients[client], sides.clients.clients[client]
        assert (mine.record_ids, mine.input_ids, mine.labels) == \
            (theirs.record_ids, theirs.input_ids, theirs.labels)
        assert silo.crypto is not None and sides.clients.crypto is not None
        assert silo.crypto.client_context == sides.clients.crypto.client_context
        if index == 0:
            a, b = sides.clients.model.state_dict(), silo.model.state_dict()
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
            state = sides.server.initial_states[client]
            updates = [side.client_fn(side.model, sides.server.initial_state,
                                      side.clients[client], side.federation,
                                      copy.deepcopy(state), task=side.task, round_index=1,
                                      seed=sides.config["seed"])[0]
                       for side in (sides.clients, silo)]
            assert all(torch.equal(updates[0].delta[k], updates[1].delta[k])
                       for k in updates[0].delta)


def test_the_server_rebuilt_from_its_files_holds_the_public_context_only(exported: Any
                                                                         ) -> None:
    from privaudit.mechanisms.federated.flower import deploy
    from privaudit.mechanisms.federated.flower.secure import find_remote_layer

    sides, out = exported
    server = deploy.load_server_side(out / "server")
    assert server.crypto is not None and sides.server.crypto is not None
    assert server.crypto.server_context == sides.server.crypto.server_context
    assert find_remote_layer(server.strategy) is not None
    assert (server.order, server.sizes, server.rounds) == \
        (sides.server.order, sides.server.sizes, sides.server.rounds)
    assert all(torch.equal(server.initial_state[k], sides.server.initial_state[k])
               for k in sides.server.initial_state)
    assert {c: s.accountant.to_dict() for c, s in server.initial_states.items()
            if s.accountant} == {c: s.accountant.to_dict()
                                 for c, s in sides.server.initial_states.items() if s.accountant}


def test_a_tampered_export_is_refused_with_exit_2_not_run(tmp_path: Path) -> None:
    from privaudit.mechanisms.federated.flower import deploy

    silo = tmp_path / "silo"
    silo.mkdir()
    (silo / "silo.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ConfigError, match="format must be 'privaudit-flower-silo/1'"):
        deploy.load_silo(silo)
    (silo / "silo.json").write_bytes(b"\x80\x04\x95")  # a pickle is not JSON
    with pytest.raises(ConfigError, match="not valid JSON"):
        deploy.load_silo(silo)


def test_the_deployment_apps_trained_from_the_export_match_the_in_memory_federation(
    exported: Any,
) -> None:
    """The ServerApp and ClientApps of the deployment runtime, on a loopback Grid (every
    message through the real apps), load the export and train to the same global adapter."""
    from flwr.app import Context, RecordDict
    from flwr.supercore.task_identity import TaskIdentity

    from privaudit.mechanisms.federated.flower import deploy
    from privaudit.mechanisms.federated.flower.client_app import make_client_app
    from privaudit.mechanisms.federated.flower.server_app import serve
    from tests.mechanisms.federated.test_flower import LoopbackGrid

    sides, out = exported
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    grid = LoopbackGrid(make_client_app(deploy._silo_of), len(sides.clients.order))
    grid.contexts = {
        1000 + i: Context(run_id=1, node_id=1000 + i, state=RecordDict(), run_config={},
                          node_config={deploy.SILO_KEY: str(out / f"silo-{i}")})
        for i in range(len(sides.clients.order))
    }
    server_context = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(),
                             run_config={deploy.JOB_KEY: str(out / "server")})
    deploy.run_server(grid, server_context)
    result = json.loads((out / "server" / "result" / "result.json").read_text())
    # the in-memory sides, served the same way (run last: it advances their accountants)
    memory = LoopbackGrid(make_client_app(lambda ctx: sides.clients), len(sides.clients.order))
    served = serve(memory, sides.server, lambda r, res: None)
    assert len(result["rounds"]) == sides.server.rounds
    assert [r["clients"] for r in result["rounds"]] == [r.clients for r in served.rounds]
    # CKKS decryption adds ~1e-6 of fresh encryption noise per sum: equal up to that
    from privaudit.mechanisms.models import load_adapter

    final = load_adapter(out / "server" / "result" / f"round-{sides.server.rounds:03d}" /
                         "adapter.safetensors")
    expected = served.rounds[-1].global_state
    assert final.keys() == expected.keys()
    diff = max(float((final[k] - expected[k]).abs().max()) for k in final)
    moved = max(float((expected[k] - sides.server.initial_state[k]).abs().max())
                for k in final)
    assert diff < 1e-4 < moved, (diff, moved)


def test_a_masked_deployment_export_gives_the_bfv_secret_to_one_silo_and_trains_alike(
    tmp_path: Path,
) -> None:
    """With pairwise masking the export holds the BFV public context everywhere and the
    secret key in the first silo only; the deployment apps train to the in-memory mean."""
    pytest.importorskip("flwr")
    import tenseal as ts
    from flwr.app import Context, RecordDict
    from flwr.supercore.task_identity import TaskIdentity

    from privaudit.audit import flower_export
    from privaudit.mechanisms.federated.flower import deploy
    from privaudit.mechanisms.federated.flower.client_app import make_client_app
    from privaudit.mechanisms.federated.flower.masked import (
        RemoteMaskedAggregation,
        find_masked_layer,
    )
    from privaudit.mechanisms.models import load_adapter
    from tests.mechanisms.federated.test_flower import LoopbackGrid

    cfg = config_from_dict(merge(TINY, {
        "federation": {"clients": 3, "rounds": 1},
        "secure_aggregation": {"enabled": True, "masking": "pairwise"}}))
    sides = flower_export.prepare_sides(cfg, tmp_path)
    deploy.write_sides(sides, tmp_path)
    assert [(tmp_path / f"silo-{i}" / "bfv-secret.ctx").is_file() for i in range(3)] == \
        [True, False, False]
    assert not list((tmp_path / "server").glob("*secret*"))
    server = deploy.load_server_side(tmp_path / "server")
    remote = find_masked_layer(server.strategy)
    assert isinstance(remote, RemoteMaskedAggregation)
    assert ts.context_from(remote.public_context).is_public()
    assert deploy.load_silo(tmp_path / "silo-1").masked.secret_context is None  # type: ignore[union-attr]

    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    grid = LoopbackGrid(make_client_app(deploy._silo_of), 3)
    grid.contexts = {
        1000 + i: Context(run_id=1, node_id=1000 + i, state=RecordDict(), run_config={},
                          node_config={deploy.SILO_KEY: str(tmp_path / f"silo-{i}")})
        for i in range(3)
    }
    deploy.run_server(grid, Context(run_id=1, node_id=0, node_config={}, state=RecordDict(),
                                    run_config={deploy.JOB_KEY: str(tmp_path / "server")}))
    decrypted_by = {m.metadata.dst_node_id for m in grid.sent
                    if m.metadata.message_type == "query"
                    and m.content.config_records["query"]["action"] == "decrypt_masked"}
    assert decrypted_by == {1000}  # the key holder's silo
    final = load_adapter(tmp_path / "server" / "result" / "round-001" / "adapter.safetensors")
    from privaudit.mechanisms.federated.flower.server_app import serve

    memory = LoopbackGrid(make_client_app(lambda ctx: sides.clients), 3)
    expected = serve(memory, sides.server, lambda r, res: None).rounds[-1].global_state
    assert max(float((final[k] - expected[k]).abs().max()) for k in final) < 1e-5
