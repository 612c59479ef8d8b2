"""One run's shared state, built once: the prepared data, the model bundle and the encoder.

``privaudit run`` (every stage), ``privaudit erase`` (rebuilding a finished run), the Flower
export and the benchmarks all start the same way — the config's data prepared, the base
model loaded (pretrained on the public split when it is built from a config) with LoRA,
records encoded by that model's tokenizer — so they all start here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn
from transformers import PreTrainedTokenizerBase

from privaudit.audit.config import AuditConfig
from privaudit.audit.stages.utility import MeasuredUtility, measure_utility
from privaudit.core.rundir import RunDir
from privaudit.mechanisms.data import PreparedData, prepare_data, records_sha256
from privaudit.mechanisms.data.records import Record
from privaudit.mechanisms.model.device import resolve_device
from privaudit.mechanisms.models import (
    AdapterState,
    ModelBundle,
    adapter_state,
    apply_lora,
    load_base_model,
    load_tokenizer,
    state_sha256,
)
from privaudit.mechanisms.pretrain import load_or_pretrain
from privaudit.mechanisms.tasks import EncodedSet, FeatureCache, attach_features, encode_records


def prepare_run_data(cfg: AuditConfig) -> PreparedData:
    """The run's data: corpus, partition over the clients, audit split, canaries."""
    return prepare_data(cfg.data, task=cfg.model.task, k=cfg.federation.clients, seed=cfg.seed,
                        canaries=cfg.attacks.canaries)


def _base(cfg: AuditConfig, data: PreparedData) -> tuple[PreTrainedTokenizerBase, nn.Module]:
    tokenizer = load_tokenizer(cfg.model)
    num_labels = len(data.labels) if data.labels else None
    return tokenizer, load_base_model(cfg.model, tokenizer=tokenizer, num_labels=num_labels,
                                      seed=cfg.seed)


def trainable_coordinates(cfg: AuditConfig, data: PreparedData) -> int:
    """How many coordinates the run's adapter trains, from the model built as
    :func:`build_model` builds it but without pretraining (which changes values, not
    shapes); for checks made before the run directory exists."""
    _, base = _base(cfg, data)
    model, _ = apply_lora(cfg.model, base, seed=cfg.seed, place=False)  # counted on the CPU
    return sum(int(t.numel()) for t in adapter_state(model).values())


def build_model(cfg: AuditConfig, data: PreparedData, run: RunDir) -> ModelBundle:
    """Tokenizer, base model (pretrained on the public split when built, in float32 on
    ``model.device``), LoRA; the model is left on ``model.device`` with its frozen base in
    ``model.dtype``. ``base_sha256`` is the base's hash before that cast (the weights as
    loaded or pretrained; ``model.dtype`` is in the config)."""
    tokenizer, base = _base(cfg, data)
    base = base.to(resolve_device(cfg.model.device))
    if cfg.model.task == "causal-lm" and cfg.model.base == "tiny":
        public = encode_records(
            data.public, tokenizer, labels=None, max_length=cfg.model.max_length
        )
        base = load_or_pretrain(
            base,
            public,
            cfg.model,
            seed=cfg.seed,
            cache_root=run.path("models", "base"),
            public_sha256=records_sha256(data.public),
        )
    base_sha = state_sha256(base.state_dict())
    model, adapter_cfg_sha = apply_lora(cfg.model, base, seed=cfg.seed)
    return ModelBundle(
        model=model,
        tokenizer=tokenizer,
        task=cfg.model.task,
        base_sha256=base_sha,
        adapter_config_sha256=adapter_cfg_sha,
    )


@dataclass
class RunSession:
    """The config, its prepared data, the model bundle and the adapter every training of the
    run starts from (the target, the references, the oracles)."""

    cfg: AuditConfig
    data: PreparedData
    bundle: ModelBundle
    initial_state: AdapterState
    #: the frozen prefix's features of every record encoded so far (see ``encode``)
    _features: FeatureCache = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, cfg: AuditConfig, run: RunDir, data: PreparedData | None = None
              ) -> RunSession:
        """Prepare the data (unless given: the pre-flight already did) and build the model."""
        data = prepare_run_data(cfg) if data is None else data
        bundle = build_model(cfg, data, run)
        return cls(cfg=cfg, data=data, bundle=bundle, initial_state=adapter_state(bundle.model))

    def encode(self, records: Sequence[Record]) -> EncodedSet:
        """Records as the run's model reads them (tokenized; frozen-prefix features cached)."""
        encoded = encode_records(list(records), self.bundle.tokenizer, labels=self.data.labels,
                                 max_length=self.cfg.model.max_length)
        return attach_features(encoded, self.bundle.model, cache=self._features)

    def utility(self, test: EncodedSet, *, state: AdapterState) -> MeasuredUtility:
        """The model's utility with adapter ``state`` (left loaded) on ``test``, the encoded
        test split, and the baselines' on the same records (:mod:`.stages.utility`)."""
        return measure_utility(self.bundle.model, test, state=state, task=self.cfg.model.task,
                               train=self.data.training, test=self.data.test,
                               base_state=self.initial_state, seed=self.cfg.seed)
