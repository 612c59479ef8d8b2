"""What travels with the ciphertexts in plaintext, and how the server checks it.

An :class:`EncryptedUpdate` is produced by
:func:`~privaudit.mechanisms.secagg.client.encrypt_update` and consumed by
:class:`~privaudit.mechanisms.secagg.server.SecureAggregator`, which compares its
:class:`UpdateManifest` with the round's :class:`ExpectedRound` before touching a ciphertext.
The sha256 of each ciphertext detects corruption in transit; it authenticates nothing
(a malicious sender recomputes it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from privaudit.mechanisms.secagg.packing import ArrayLike, TensorLayout
from privaudit.mechanisms.secagg.results import RejectionReason


class UpdateManifest(BaseModel):
    """The plaintext description of one client's encrypted update."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1)
    round: int = Field(ge=0)
    adapter_config_hash: str
    weight: float = Field(gt=0, allow_inf_nan=False, description="aggregation weight w_k")
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]
    n_values: int = Field(ge=0)
    slots_per_ciphertext: int = Field(gt=0)
    n_ciphertexts: int = Field(ge=0)
    ciphertext_sha256: tuple[str, ...]


@dataclass(frozen=True)
class EncryptedUpdate:
    """One client's update: the manifest and the serialized CKKS ciphertexts (w_k * delta_k)."""

    manifest: UpdateManifest
    ciphertexts: tuple[bytes, ...]

    @property
    def ciphertext_bytes(self) -> int:
        """Total size of the serialized ciphertexts (the manifest not counted)."""
        return sum(len(c) for c in self.ciphertexts)


@dataclass(frozen=True)
class EncryptedSum:
    """Σ_k w_k·delta_k as serialized ciphertexts, plus Σ_k w_k in plaintext."""

    round: int
    adapter_config_hash: str
    layout: TensorLayout
    ciphertexts: tuple[bytes, ...]
    total_weight: float
    client_ids: tuple[str, ...]


@dataclass(frozen=True)
class ExpectedRound:
    """What the server accepts this round: adapter layout, adapter config hash, round number."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    adapter_config_hash: str
    round: int

    def __post_init__(self) -> None:
        TensorLayout(self.names, self.shapes)  # raises SecureAggregationError when malformed

    @classmethod
    def from_state(
        cls, state: Mapping[str, ArrayLike], *, adapter_config_hash: str, round: int
    ) -> ExpectedRound:
        """The expected round for deltas shaped like the adapter state dict ``state``."""
        layout = TensorLayout.of(state)
        return cls(layout.names, layout.shapes, adapter_config_hash, round)

    @property
    def layout(self) -> TensorLayout:
        """Names and shapes as a :class:`TensorLayout`."""
        return TensorLayout(self.names, self.shapes)


def manifest_problem(
    manifest: UpdateManifest, expected: ExpectedRound, *, slots: int, n_chunks: int
) -> tuple[RejectionReason, str] | None:
    """The first reason to reject ``manifest`` (with a detail naming the value), or None.

    ``slots`` is N/2 read from the server's own context, never from the manifest;
    ``n_chunks`` is how many ciphertexts actually arrived.
    """
    if manifest.round != expected.round:
        return "stale_round", f"round {manifest.round}, expected {expected.round}"
    if manifest.adapter_config_hash != expected.adapter_config_hash:
        return "config_hash_mismatch", (
            f"adapter_config_hash {manifest.adapter_config_hash!r}, "
            f"expected {expected.adapter_config_hash!r}"
        )
    layout = expected.layout
    for field, got, want in (
        ("names", manifest.names, layout.names),
        ("shapes", manifest.shapes, layout.shapes),
        ("offsets", manifest.offsets, layout.offsets),
        ("n_values", manifest.n_values, layout.n_values),
        ("slots_per_ciphertext", manifest.slots_per_ciphertext, slots),
    ):
        if got != want:
            return "layout_mismatch", f"{field} differs from the expected: {_diff(got, want)}"
    if not (math.isfinite(manifest.weight) and manifest.weight > 0):
        return "invalid_weight", f"weight must be finite and > 0 (got {manifest.weight})"
    need = math.ceil(layout.n_values / slots)
    if not manifest.n_ciphertexts == n_chunks == len(manifest.ciphertext_sha256) == need:
        return "ciphertext_count_mismatch", (
            f"{n_chunks} ciphertexts, manifest says {manifest.n_ciphertexts} with "
            f"{len(manifest.ciphertext_sha256)} digests, layout needs {need}"
        )
    return None


def _diff(got: object, want: object) -> str:
    """A short description of where two manifest fields differ."""
    if isinstance(got, tuple) and isinstance(want, tuple):
        for i, (g, w) in enumerate(zip(got, want, strict=False)):
            if g != w:
                return f"item {i}: got {g!r}, expected {w!r}"
        return f"got {len(got)} items, expected {len(want)}"
    return f"got {got!r}, expected {want!r}"
