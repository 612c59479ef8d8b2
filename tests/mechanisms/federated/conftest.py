"""A tiny federation (1-layer BERT, hidden 32) built the way the pipeline builds it, without
the attack and report stages: the config, the model bundle and the encoded client data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from privaudit.audit.config import AuditConfig, config_from_dict
from privaudit.audit.pipeline import build_model
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.data import PreparedData, prepare_data
from privaudit.mechanisms.models import ModelBundle, adapter_state
from privaudit.mechanisms.tasks import EncodedSet, attach_features, encode_records
from tests.conftest import TINY, merge


@dataclass
class Federation:
    cfg: AuditConfig
    bundle: ModelBundle
    data: PreparedData
    clients: dict[str, EncodedSet]
    test: EncodedSet

    def initial_state(self) -> dict[str, Any]:
        return adapter_state(self.bundle.model)


def build_federation(patch: dict[str, Any], root: Path, base: dict[str, Any] | None = None
                     ) -> Federation:
    cfg = config_from_dict(merge(base or TINY, patch))
    data = prepare_data(cfg.data, task=cfg.model.task, k=cfg.federation.clients, seed=cfg.seed)
    bundle = build_model(cfg, data, RunDir(root).create())

    def encode(records: list[Any]) -> EncodedSet:
        encoded = encode_records(
            records, bundle.tokenizer, labels=data.labels, max_length=cfg.model.max_length
        )
        return attach_features(encoded, bundle.model)

    clients = {c: encode(recs) for c, recs in data.clients.items()}
    return Federation(cfg, bundle, data, clients, encode(data.test))


@pytest.fixture
def federation(tmp_path: Path) -> Callable[..., Federation]:
    """``federation(patch)``: the TINY config deep-merged with ``patch``, built."""
    return lambda patch, base=None: build_federation(patch, tmp_path / "run", base)
