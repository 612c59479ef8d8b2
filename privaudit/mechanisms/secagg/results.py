"""Secure aggregation in the report (``report.json`` → ``secure_aggregation``): result types.

Here, apart from the server and the key holder, so that reading a report needs no TenSEAL.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RejectionReason = Literal[
    "stale_round",
    "config_hash_mismatch",
    "duplicate_client",
    "layout_mismatch",
    "invalid_weight",
    "ciphertext_count_mismatch",
    "ciphertext_digest_mismatch",
    "undecodable_ciphertext",
    "invalid_ciphertext",
    "unknown_client",
    "unsigned",
    "bad_signature",
    "replayed",
]


class Rejection(BaseModel):
    """One refused update: who sent it, in which round, why (a code) and the detail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str
    round: int
    reason: RejectionReason
    detail: str


#: What homomorphic secure aggregation does and does not protect (REFERENCE.md), in words a
#: regulator can read. Every report carries this list.
THREAT_MODEL: tuple[str, ...] = (
    "The server receives only ciphertexts and a context without the secret key: it can add "
    "client updates but cannot decrypt any of them, nor the sum.",
    "All clients share one secret key: a client colluding with the server can decrypt any "
    "single client's update.",
    "The decrypted sum is revealed: with fewer than 3 clients in a round a participant could "
    "subtract its own update and read another's, so every round needs at least min_clients "
    "accepted updates.",
    "Homomorphic encryption gives no differential privacy: the aggregate and the trained model "
    "can still leak training data; updates are clipped (and noised under DP) on each client "
    "before encryption.",
    "The server can drop, replay or reorder ciphertexts: updates carry no integrity "
    "protection; manifest checks and ciphertext digests catch malformed or corrupted updates, "
    "not a malicious sender.",
    "Decrypted CKKS results must never go back to a party holding the matching ciphertexts "
    "(key-recovery attack, Li & Micciancio 2021); the released global model is such a result, "
    "and no noise flooding is applied against this.",
)


#: The threat model of pairwise masking under BFV (``masking: pairwise``), one line per
#: adversary, from what the code does (``mechanisms/federated/secure_masked.py``).
MASKED_THREAT_MODEL: tuple[str, ...] = (
    "Server: receives BFV ciphertexts under the key holder's public key and holds no secret "
    "key; it adds them and learns the unmasked sum only, never one client's update.",
    "Key holder: holds the secret key and decrypts the sum only; decrypting one client's "
    "ciphertext gives values masked by that client's pair masks, uniform on Z_t and "
    "independent of the update (tested: chi-square and correlation).",
    "One client: holds no secret key (clients encrypt with the public key), so it cannot "
    "decrypt another's ciphertext; its own pair seeds remove none of the masks between two "
    "other clients.",
    "Server + one client (or + key holder): the other clients' updates stay hidden while at "
    "least two honest clients are in the round, since the masks between them are unknown to "
    "the coalition.",
    "t - 1 clients (t = min_clients), with or without the server: fewer than t Shamir shares "
    "reveal nothing of a client's masking key, so they cannot unmask it; with fewer than t "
    "survivors a round fails.",
    "A server that falsely declares a live client dropped obtains that client's pair seeds "
    "from the survivors' shares, but its update stays hidden by its self-mask (double "
    "masking, Bonawitz et al. 2017): survivors release shares of a peer's self-mask only if "
    "its update was counted, and of its masking key only if it was not, never both (tested).",
    "Integrity: each client signs its masking key and its update (round, nonce, weight, "
    "ciphertext digests) with its own Ed25519 key; unsigned, altered, replayed, stale or "
    "duplicated updates are refused and listed in the round log, and the sender counts as "
    "dropped. The server can still drop updates, which is a dropout.",
    "Share transport: each Shamir share travels sealed to its holder (ChaCha20-Poly1305 "
    "under an X25519-agreed key separate from the masking key), so the server that routes "
    "shares reads none. Identity keys are registered when a node first answers (Flower's "
    "describe): a server that substitutes them at that moment could impersonate clients; "
    "provision identity keys out of band to exclude it.",
    "Engines: in-process and Flower run the same protocol code; in a Flower deployment export "
    "only the first silo (the key holder) gets the BFV secret key, while the simulation "
    "hands one workload holding it to every virtual node (a simulation, not a separation).",
    "Decryption is exact (BFV): the released sum carries no secret-key-dependent decryption "
    "noise, so the Li-Micciancio key-recovery attack on approximate CKKS decryption does not "
    "apply and no flooding noise is needed.",
    "The sum is revealed and rounds need at least min_clients updates; secure aggregation "
    "gives no differential privacy: updates are clipped (and noised under DP) before masking.",
)


class SecureAggregationReport(BaseModel):
    """``report.json`` → ``secure_aggregation``. Fields other than ``enabled`` are None when off."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    scheme: str | None = None
    poly_modulus_degree: int | None = None
    coeff_mod_bit_sizes: list[int] | None = None
    scale_bits: int | None = None
    security_bits: int | None = Field(
        default=None, description="HE-standard tier met (256/192/128); 0 = below 128, no claim"
    )
    expansion_ratio: float | None = Field(
        default=None, description="ciphertext bytes / fp32 bytes"
    )
    max_abs_error: float | None = Field(
        default=None, description="max |decrypted mean - plaintext weighted mean| on the run"
    )
    min_clients: int | None = None
    insecure: bool = Field(
        default=False, description="a weakened setting was allowed by allow_insecure"
    )
    threat_model: list[str] = Field(default_factory=list)
    rejections: list[Rejection] = Field(default_factory=list)
    masking: str | None = Field(default=None, description="pairwise, or None (CKKS path)")
    quantization_bits: int | None = None
    plain_modulus_bits: int | None = None
    quantization_error_bound: float | None = Field(
        default=None, description="pairwise masking: largest bound on |decrypted mean - exact "
        "mean| from the fixed-point grid over the run's rounds")
    dropped: list[str] = Field(
        default_factory=list, description="clients that dropped after agreeing masks, by "
        "round; their masks were removed with the survivors' threshold shares")
