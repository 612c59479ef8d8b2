"""Server side: check each encrypted update against the round and add it to a running sum.

Pair with :func:`~privaudit.mechanisms.secagg.client.encrypt_update` on the clients and with
:meth:`KeyHolder.decrypt_mean <privaudit.mechanisms.secagg.keys.KeyHolder.decrypt_mean>` on
the key holder. The server holds only the public context (no secret key; a context with one
is refused), only adds, and keeps one running sum rather than every update. A bad update is
recorded in :attr:`SecureAggregator.rejections` and the round goes on; :meth:`finish` fails
the round when fewer than ``min_clients`` updates were accepted.
"""

from __future__ import annotations

import hashlib
import math

import tenseal as ts

from privaudit.core.errors import SecureAggregationError
from privaudit.mechanisms.secagg.context import load_context, slots_per_ciphertext
from privaudit.mechanisms.secagg.manifest import (
    EncryptedSum,
    EncryptedUpdate,
    ExpectedRound,
    RejectionReason,
    manifest_problem,
)
from privaudit.mechanisms.secagg.packing import chunk_bounds
from privaudit.mechanisms.secagg.results import Rejection


class SecureAggregator:
    """Streams the encrypted updates of one round into a ciphertext sum."""

    def __init__(self, server_context: bytes, *, expected: ExpectedRound, min_clients: int) -> None:
        if min_clients < 1:
            raise SecureAggregationError(f"min_clients: must be >= 1 (got {min_clients})")
        self._ctx = load_context(server_context, role="server")
        self._slots = slots_per_ciphertext(self._ctx)
        self._scale = float(self._ctx.global_scale)
        self.expected = expected
        self.min_clients = min_clients
        self.rejections: list[Rejection] = []
        self._sum: list[ts.CKKSVector] | None = None
        self._accepted: list[str] = []
        self._total_weight = 0.0
        self._finished = False

    @property
    def accepted(self) -> tuple[str, ...]:
        """Client ids whose update is in the sum, in arrival order."""
        return tuple(self._accepted)

    def add(self, update: EncryptedUpdate) -> bool:
        """Add ``update`` to the sum; return False (and record why) when it is rejected."""
        if self._finished:
            raise SecureAggregationError("SecureAggregator.add: the round is already finished")
        manifest = update.manifest
        problem = manifest_problem(
            manifest, self.expected, slots=self._slots, n_chunks=len(update.ciphertexts)
        )
        if problem is None and manifest.client_id in self._accepted:
            problem = ("duplicate_client", f"{manifest.client_id!r} is already in the sum")
        vectors: list[ts.CKKSVector] = []
        if problem is None:
            problem = self._decode(update, vectors)
        if problem is not None:
            reason, detail = problem
            self.rejections.append(Rejection(
                client_id=manifest.client_id, round=manifest.round, reason=reason, detail=detail,
            ))
            return False
        if self._sum is None:
            self._sum = vectors
        else:
            self._sum = [a + b for a, b in zip(self._sum, vectors, strict=True)]
        self._accepted.append(manifest.client_id)
        self._total_weight += manifest.weight
        return True

    def _decode(
        self, update: EncryptedUpdate, out: list[ts.CKKSVector]
    ) -> tuple[RejectionReason, str] | None:
        """Load every ciphertext of ``update`` into ``out``, or say why one is unusable."""
        bounds = chunk_bounds(self.expected.layout.n_values, self._slots)
        for i, (blob, digest, (start, stop)) in enumerate(
            zip(update.ciphertexts, update.manifest.ciphertext_sha256, bounds, strict=True)
        ):
            if hashlib.sha256(blob).hexdigest() != digest:
                return "ciphertext_digest_mismatch", f"ciphertext {i}: sha256 differs from manifest"
            try:
                vector = ts.ckks_vector_from(self._ctx, blob)
                problem = self._ciphertext_problem(vector, stop - start)
            except (ValueError, RuntimeError, TypeError, AttributeError) as exc:
                return "undecodable_ciphertext", f"ciphertext {i}: {exc}"
            if problem:
                return "invalid_ciphertext", f"ciphertext {i}: {problem}"
            out.append(vector)
        return None

    def _ciphertext_problem(self, vector: ts.CKKSVector, n_values: int) -> str | None:
        """What is wrong with a decoded chunk: slot count, scale, polynomial count, transparency."""
        if vector.size() != n_values:
            return f"packs {vector.size()} values, expected {n_values}"
        parts = vector.ciphertext()
        if len(parts) != 1:
            return f"has {len(parts)} SEAL ciphertexts, expected 1"
        ct = parts[0]
        if ct.size() != 2:
            return f"has {ct.size()} polynomials, expected 2 (a fresh ciphertext)"
        if ct.is_transparent():
            return "is transparent (it would reveal its plaintext)"
        if float(ct.scale) != self._scale:
            return f"scale 2^{_log2(ct.scale):.1f}, expected 2^{_log2(self._scale):.1f}"
        return None

    def finish(self) -> EncryptedSum:
        """Close the round. Raises :class:`SecureAggregationError` under ``min_clients``."""
        self._finished = True
        n = len(self._accepted)
        if n < self.min_clients or self._sum is None:
            named = ", ".join(f"{r.client_id}: {r.reason}" for r in self.rejections) or "none"
            raise SecureAggregationError(
                f"round {self.expected.round}: {n} update(s) accepted, min_clients is "
                f"{self.min_clients}; the round fails (rejected: {named})"
            )
        return EncryptedSum(
            round=self.expected.round,
            adapter_config_hash=self.expected.adapter_config_hash,
            layout=self.expected.layout,
            ciphertexts=tuple(v.serialize() for v in self._sum),
            total_weight=self._total_weight,
            client_ids=tuple(self._accepted),
        )


def _log2(value: float) -> float:
    """log2 of a positive scale, for messages."""
    return math.log2(value) if value > 0 else float("-inf")
