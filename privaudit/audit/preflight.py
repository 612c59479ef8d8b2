"""Every check a run can make from its config and its data alone, before it writes anything.

:func:`preflight` is what ``run_audit`` calls before the run directory is created, and what
``privaudit run --dry-run`` runs: so a config that the dry run calls valid does not fail on
something the dry run could have seen, and a config that fails leaves nothing behind. It
prepares the data as the run will (a bad data file is a :class:`DataError` naming the line)
and collects every finding before it raises one error listing them all:

* ``model.base``: a local model directory whose config.json or tokenizer does not load;
* ``model.device`` / ``model.dtype``: CUDA asked for on a machine without it (or a CUDA index
  past its devices), float16 on the CPU;
* ``unlearning.requests``: ids not in the training data, a federation left too small;
* ``attacks.dp_audit``: guesses that give no guess; more gradient canaries than the
  adapter has trainable coordinates (the adapter is built, without pretraining, to count);
* ``privacy.dp`` and ``secure_aggregation`` against the real client sizes (DP-audit canaries
  included, as the run trains): δ against 1/N, sample rates, a batch larger than a client,
  a target ε that no noise reaches, ``secure_aggregation.min_clients`` above the clients;
* ``attacks.references``: the same checks on every reference federation's client sizes
  (each re-partitions its half of the population with its own seed).

What needs the built model (Opacus' layer checks) stays with training.
"""

from __future__ import annotations

from privaudit.audit.config import AuditConfig
from privaudit.audit.session import prepare_run_data, trainable_coordinates
from privaudit.audit.stages.dp_audit import dp_audit_kind, plant_dp_audit
from privaudit.audit.stages.erase import check_requests
from privaudit.audit.stages.references import reference_problems
from privaudit.core.errors import ConfigError, DataError
from privaudit.mechanisms.data import PreparedData
from privaudit.mechanisms.dp.gradient_canaries import room_problem
from privaudit.mechanisms.federated.privacy import privacy_error, privacy_problems
from privaudit.mechanisms.model.device import device_problems
from privaudit.mechanisms.models import base_model_problems


def preflight(cfg: AuditConfig) -> PreparedData:
    """The run's prepared data, once every check on ``cfg`` and the data passed; else one
    ConfigError (exit 2) listing every problem found (a DataError alone stays a DataError)."""
    problems = base_model_problems(cfg.model) + device_problems(cfg.model)
    try:
        data = prepare_run_data(cfg)
    except (DataError, ConfigError) as exc:
        if not problems:
            raise
        raise _all(problems + (exc.problems if isinstance(exc, ConfigError) else [str(exc)])
                   ) from None
    try:
        check_requests(cfg.secure_aggregation, data, cfg.unlearning.requests)
    except ConfigError as exc:
        problems += exc.problems
    trained_on = data.clients
    try:
        plan = plant_dp_audit(cfg, data)
        if plan is not None:
            trained_on = plan.with_clients(data.clients)
    except ConfigError as exc:
        problems += exc.problems
    if not problems:
        problems += _gradient_canary_room(cfg, data)
    privacy = privacy_problems(cfg.recipe, client_sizes={c: len(r) for c, r in trained_on.items()})
    if privacy and not problems:
        raise privacy_error(privacy)
    problems += privacy or reference_problems(cfg, data)
    if problems:
        raise _all(problems)
    return data


def _gradient_canary_room(cfg: AuditConfig, data: PreparedData) -> list[str]:
    """Gradient canaries take one trainable coordinate each: count the adapter's."""
    audit = cfg.attacks.dp_audit
    if audit is None or dp_audit_kind(cfg) != "gradient":
        return []
    problem = room_problem(audit.canaries, trainable_coordinates(cfg, data))
    return [problem] if problem else []


def _all(problems: list[str]) -> ConfigError:
    message = problems[0] if len(problems) == 1 else \
        f"{len(problems)} problem(s) in the config and data"
    return ConfigError(message, problems)
