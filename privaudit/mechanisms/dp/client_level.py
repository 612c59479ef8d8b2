"""Client-level DP: DP-FedAvg (McMahan, Ramage, Talwar & Zhang 2018, "Learning
Differentially Private Recurrent Language Models").

One round, wrapped around the federation's strategy rather than replacing it::

    chosen = sample_clients(n, sample_rate=q, generator=g)           # Poisson, rate q
    clipped = [clip_delta(delta[k], clip_norm=S)[0] for k in chosen]  # on each client
    update = noisy_uniform_aggregate(clipped, clip_norm=S, noise_multiplier=z,
                                     expected_clients=q * n, generator=g)
    federation_accountant.step(noise_multiplier=z, sample_rate=q, num_steps=1,
                               round_index=r)

The guarantee (neighbouring = add/remove one client's whole data) holds only when this is
paired with: every delta clipped to S; UNIFORM weights; the FIXED denominator q·n (the
expected number of clients, not the number that turned up); Poisson client sampling at the
rate q the accountant is given. Weighting clients by their example count after clipping
lets one client contribute more than S and breaks the sensitivity bound. With secure
aggregation the clipped deltas are summed under encryption and the key holder applies
:func:`add_noise_to_sum` to the decrypted sum: it must be trusted to add the noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from privaudit.core.errors import InternalError, PrivacyBudgetError

_NORM_SLACK = 1e-5


def global_norm(delta: Mapping[str, Tensor]) -> float:
    """L2 norm of all tensors of ``delta`` taken together (float64)."""
    return math.sqrt(sum(float(t.detach().double().pow(2).sum()) for t in delta.values()))


def clip_delta(delta: Mapping[str, Tensor], *, clip_norm: float) -> tuple[dict[str, Tensor], float]:
    """``delta`` scaled so that its global L2 norm (over all tensors) is at most ``clip_norm``;
    also its norm before clipping.

    >>> clipped, norm = clip_delta({"a": torch.tensor([3.0]), "b": torch.tensor([4.0])},
    ...                            clip_norm=1.0)
    >>> norm, [round(float(t), 6) for t in clipped.values()]
    (5.0, [0.6, 0.8])
    """
    if not clip_norm > 0:
        raise PrivacyBudgetError(f"privacy.dp.clip_norm: must be > 0 (got {clip_norm})")
    norm = global_norm(delta)
    scale = min(1.0, clip_norm / norm) if norm > 0 else 1.0
    return {k: t.detach() * scale for k, t in delta.items()}, norm


def sample_clients(
    n_clients: int, *, sample_rate: float, generator: torch.Generator | None = None
) -> list[int]:
    """Poisson sampling: each client takes part independently with probability q (what the
    accountant assumes); the number chosen varies from round to round and may be zero."""
    if not 0 < sample_rate <= 1:
        raise PrivacyBudgetError(
            f"privacy.dp.client_sample_rate: must be in (0, 1] (got {sample_rate})"
        )
    if sample_rate == 1:
        return list(range(n_clients))
    draws = torch.rand(n_clients, generator=generator)
    return [int(i) for i in torch.nonzero(draws < sample_rate).flatten()]


def add_noise_to_sum(
    summed: Mapping[str, Tensor],
    *,
    clip_norm: float,
    noise_multiplier: float,
    expected_clients: float,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """(sum + N(0, z²S²)) / expected_clients, coordinate-wise: the Gaussian mechanism on a
    sum of deltas each clipped to S, with the fixed denominator q·n."""
    if not noise_multiplier > 0:
        raise PrivacyBudgetError(
            f"privacy.dp.noise_multiplier: must be > 0 with DP on (got {noise_multiplier})"
        )
    if not clip_norm > 0:
        raise PrivacyBudgetError(f"privacy.dp.clip_norm: must be > 0 (got {clip_norm})")
    if not expected_clients > 0:
        raise PrivacyBudgetError(
            "privacy.dp.client_sample_rate: expected clients q·n must be > 0 "
            f"(got {expected_clients})"
        )
    std = noise_multiplier * clip_norm
    out = {}
    for key, total in summed.items():
        noise = torch.normal(0.0, std, size=total.shape, generator=generator, dtype=total.dtype)
        out[key] = (total.detach() + noise.to(total.device)) / expected_clients
    return out


def noisy_uniform_aggregate(
    clipped_deltas: Sequence[Mapping[str, Tensor]],
    *,
    clip_norm: float,
    noise_multiplier: float,
    expected_clients: float,
    generator: torch.Generator | None = None,
    like: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """The DP-FedAvg update: uniform sum of the clipped deltas, Gaussian noise of std z·S,
    divided by the fixed ``expected_clients`` (q·n). ``like`` gives the shapes when no client
    was sampled (the update is then noise alone, as the analysis requires). Raises
    InternalError for a delta over S: it was not clipped, and the bound would not hold."""
    template = clipped_deltas[0] if clipped_deltas else like
    if template is None:
        raise InternalError("noisy_uniform_aggregate needs `like` when no client was sampled")
    summed = {k: torch.zeros_like(t) for k, t in template.items()}
    for i, delta in enumerate(clipped_deltas):
        if delta.keys() != summed.keys():
            raise InternalError(f"client delta {i} has different tensors from the others")
        norm = global_norm(delta)
        if norm > clip_norm * (1 + _NORM_SLACK):
            raise InternalError(f"client delta {i} has norm {norm:.6g} > clip_norm {clip_norm}")
        for k, t in delta.items():
            summed[k] += t.detach()
    return add_noise_to_sum(
        summed,
        clip_norm=clip_norm,
        noise_multiplier=noise_multiplier,
        expected_clients=expected_clients,
        generator=generator,
    )
