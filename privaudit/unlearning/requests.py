"""Erasure requests: one record, every record of one data subject, or a whole client.

A request is declared in the config (``unlearning.requests``) or in a REQUEST.yaml served on
a finished run (``privaudit erase``). Its fields are checked by pydantic when it is read; its
ids are checked against the run's data by :func:`resolve_requests`, which collects every
finding before raising one :class:`ConfigError` (exit 2) that names the offending ids:
ids not in the training data, audit non-members or other held-out records, clients that do
not exist, ids an earlier request already erased, a request that would leave no training data.

This module imports nothing from the rest of privaudit at run time (the config imports it).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from privaudit.core.errors import ConfigError
from privaudit.core.hashing import ordered_ids_sha256
from privaudit.core.safe_yaml import load_yaml_file

if TYPE_CHECKING:
    from privaudit.mechanisms.data.splits import PreparedData

RequestKind = Literal["record", "subject", "client"]
_SHOWN = 10


class ErasureRequest(BaseModel):
    """``{id, kind: record | subject | client, ids, received_at}``.

    ``ids`` are record ids (``record``), data-subject ids (``subject``: every training record
    of each subject) or client ids such as ``client-2`` (``client``). ``id`` names the request
    in the run directory (``models/<method>/<id>/``), so it is a short path-safe token.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="request id: letters, digits, '.', '_' or '-' (used in paths)",
    )
    kind: RequestKind
    ids: list[str] = Field(description="record, subject or client ids the request erases")
    received_at: datetime | None = Field(default=None, description="when the request arrived")

    @field_validator("ids")
    @classmethod
    def _not_empty(cls, ids: list[str]) -> list[str]:
        ids = [i.strip() for i in ids]
        if not ids or not all(ids):
            raise ValueError("an erasure request must name at least one non-empty id")
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"ids must be distinct; repeated: {repeated[:_SHOWN]}")
        return ids


@dataclass(frozen=True)
class ResolvedRequest:
    """A request checked against the data: the training records it erases, and where they are."""

    request: ErasureRequest
    record_ids: tuple[str, ...]  # sorted training-record ids
    clients: tuple[str, ...]  # clients holding any of them
    whole_clients: tuple[str, ...]  # clients left with no records once they are gone

    @property
    def id(self) -> str:
        return self.request.id

    @property
    def kind(self) -> RequestKind:
        return self.request.kind

    @property
    def ids_sha256(self) -> str:
        return ordered_ids_sha256(self.record_ids)


def _shown(ids: Collection[str]) -> str:
    items = sorted(ids)
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return f"{items[:_SHOWN]}{more}"


def _records_of(
    req: ErasureRequest, data: PreparedData, where: str, problems: list[str]
) -> set[str]:
    """Training-record ids named by ``req``; problems for everything else it names."""
    training = data.training
    if req.kind == "client":
        unknown = [c for c in req.ids if c not in data.clients]
        if unknown:
            problems.append(
                f"{where}.ids: no such client(s) {_shown(unknown)}; "
                f"the run's clients are {sorted(data.clients)}"
            )
        return {r.id for c in req.ids if c in data.clients for r in data.clients[c]}

    field = "subject" if req.kind == "subject" else "record"

    def key(r: Any) -> str:
        return str(r.subject_id if req.kind == "subject" else r.id)

    trained = {key(r) for r in training}
    nonmembers = {key(r) for r in data.nonmembers}
    held_out = {key(r) for r in (*data.test, *data.public)}
    excluded = {key(r) for r in data.excluded}
    named = set(req.ids)
    if named & nonmembers:
        problems.append(
            f"{where}.ids: names audit non-members (held out, never trained on): "
            f"{_shown(named & nonmembers)}"
        )
    if (named & held_out) - nonmembers:
        problems.append(
            f"{where}.ids: names held-out test or public {field}s (never trained on): "
            f"{_shown((named & held_out) - nonmembers)}"
        )
    if (named & excluded) - trained:
        problems.append(
            f"{where}.ids: names {field}s the config already excludes (data.exclude_*): "
            f"{_shown((named & excluded) - trained)}"
        )
    missing = named - trained - nonmembers - held_out - excluded
    if missing:
        problems.append(f"{where}.ids: {field} ids not in the training data: {_shown(missing)}")
    return {r.id for r in training if key(r) in named}


def resolve_requests(
    requests: Sequence[ErasureRequest],
    data: PreparedData,
    *,
    erased: Mapping[str, str] | None = None,
    where: str = "unlearning.requests",
) -> list[ResolvedRequest]:
    """Check every request against the data; raise one ConfigError listing every problem.

    ``erased`` maps record ids erased by requests served earlier (a finished run) to the
    request that erased them; those ids, and those request ids, may not be named again.
    Requests are served in the given order, each on top of the ones before it.
    """
    erased = dict(erased or {})
    served = set(erased.values())
    problems: list[str] = []
    resolved: list[ResolvedRequest] = []
    owner = {r.id: c for c, recs in data.clients.items() for r in recs}
    remaining: dict[str, set[str]] = {c: {r.id for r in recs} for c, recs in data.clients.items()}
    for c in remaining:
        remaining[c] -= set(erased)
    for index, req in enumerate(requests):
        where_i = f"{where}[{index}] ({req.id})"
        if req.id in served:
            problems.append(f"{where_i}.id: a request with this id was already served")
        served.add(req.id)
        found: list[str] = []
        ids = _records_of(req, data, where_i, found)
        problems += found
        again = {i for i in ids if i in erased}
        by = sorted({erased[i] for i in again})
        if again and (req.kind == "record" or again == ids):
            # a subject or client request erases what is left of them; a record is named
            problems.append(
                f"{where_i}.ids: {len(again)} record(s) already erased by request(s) {by}"
            )
        ids -= again
        if not ids:
            if not found and not again:
                problems.append(f"{where_i}.ids: names no training record")
            continue
        holders: dict[str, set[str]] = defaultdict(set)
        for i in ids:
            holders[owner[i]].add(i)
        for c, gone in holders.items():
            remaining[c] -= gone
        whole = sorted(c for c in holders if not remaining[c])
        if not any(remaining.values()):
            problems.append(f"{where_i}: would leave no training data at all")
        for i in ids:
            erased[i] = req.id
        resolved.append(
            ResolvedRequest(
                request=req,
                record_ids=tuple(sorted(ids)),
                clients=tuple(sorted(holders)),
                whole_clients=tuple(whole),
            )
        )
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else (
            f"{len(problems)} problem(s) in the erasure request(s)"), problems)
    return resolved


def load_requests(path: Path) -> list[ErasureRequest]:
    """Read REQUEST.yaml: one request mapping, a list of them, or ``{requests: [...]}``."""
    if not path.is_file():
        raise ConfigError(f"--request: file not found ({path})")
    raw = load_yaml_file(path, what="--request")
    if raw is None:
        raise ConfigError(f"--request: {path.name} is empty; give one request "
                          "({id, kind: record|subject|client, ids}) or a list of them")
    if isinstance(raw, dict) and set(raw) == {"requests"}:
        raw = raw["requests"] if raw["requests"] is not None else []
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise ConfigError(f"--request: {path.name} names no request (got an empty list)")
    out: list[ErasureRequest] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        try:
            out.append(ErasureRequest.model_validate(item))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                msg = str(err["msg"]).removeprefix("Value error, ")
                problems.append(f"{path.name}[{index}].{loc}: {msg} (got {err.get('input')!r})")
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else (
            f"{len(problems)} problem(s) in {path.name}"), problems)
    return out


def load_request_stream(path: Path) -> list[ErasureRequest]:
    """Read REQUESTS.jsonl: one request per line, served in that order (blank lines
    skipped); every malformed line is named by its number."""
    if not path.is_file():
        raise ConfigError(f"--request-stream: file not found ({path})")
    out: list[ErasureRequest] = []
    problems: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name}:{number}: not a JSON object ({exc.msg}; got "
                            f"{line[:60]!r})")
            continue
        try:
            out.append(ErasureRequest.model_validate(item))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"]) or "request"
                msg = str(err["msg"]).removeprefix("Value error, ")
                problems.append(f"{path.name}:{number}: {loc}: {msg} (got {err.get('input')!r})")
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else (
            f"{len(problems)} problem(s) in {path.name}"), problems)
    if not out:
        raise ConfigError(f"--request-stream: {path.name} names no request (one JSON object "
                          "per line: {\"id\", \"kind\": record|subject|client, \"ids\"})")
    ids = [r.id for r in out]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ConfigError(f"--request-stream: request ids must be distinct; {path.name} "
                          f"repeats {repeated}")
    return out
