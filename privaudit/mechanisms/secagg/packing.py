"""Flatten an adapter delta into one float vector by sorted tensor names, and back.

Pure numpy; no encryption here. The :class:`TensorLayout` is the plaintext half of every
update's manifest: the server compares it with the round's expected layout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from privaudit.core.errors import SecureAggregationError

if TYPE_CHECKING:
    import torch

    ArrayLike = np.ndarray | torch.Tensor
else:
    ArrayLike = Any


def to_numpy(value: ArrayLike) -> np.ndarray:
    """A float64 numpy copy of a numpy array or a torch tensor (any device, any float dtype)."""
    if isinstance(value, np.ndarray):
        return np.asarray(value, dtype=np.float64)
    if hasattr(value, "detach"):
        return np.asarray(value.detach().to("cpu").double().numpy(), dtype=np.float64)
    raise SecureAggregationError(
        f"delta values must be numpy arrays or torch tensors (got {type(value).__name__})"
    )


@dataclass(frozen=True)
class TensorLayout:
    """Tensor names (sorted, unique) and shapes; offsets follow from them."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.shapes):
            raise SecureAggregationError(
                f"layout: {len(self.names)} names but {len(self.shapes)} shapes"
            )
        if list(self.names) != sorted(set(self.names)):
            raise SecureAggregationError(
                f"layout: names must be sorted and unique (got {list(self.names)[:5]}...)"
            )
        if any(d < 0 for shape in self.shapes for d in shape):
            raise SecureAggregationError("layout: shapes must not have negative dimensions")

    @classmethod
    def of(cls, delta: Mapping[str, ArrayLike]) -> TensorLayout:
        """The layout of a state dict (names sorted)."""
        names = tuple(sorted(delta))
        return cls(names, tuple(tuple(int(d) for d in delta[n].shape) for n in names))

    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of values in each tensor."""
        return tuple(math.prod(shape) for shape in self.shapes)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start of each tensor in the flat vector."""
        starts, total = [], 0
        for size in self.sizes:
            starts.append(total)
            total += size
        return tuple(starts)

    @property
    def n_values(self) -> int:
        """Length of the flat vector."""
        return sum(self.sizes)


def flatten(delta: Mapping[str, ArrayLike]) -> tuple[np.ndarray, TensorLayout]:
    """Concatenate the tensors of ``delta`` in sorted-name order into one float64 vector."""
    layout = TensorLayout.of(delta)
    if layout.n_values == 0:
        return np.zeros(0, dtype=np.float64), layout
    vector = np.concatenate([to_numpy(delta[name]).reshape(-1) for name in layout.names])
    return vector, layout


def unflatten(vector: np.ndarray, layout: TensorLayout) -> dict[str, np.ndarray]:
    """Cut a flat vector back into named tensors of ``layout``'s shapes."""
    if vector.shape != (layout.n_values,):
        raise SecureAggregationError(
            f"unflatten: vector has shape {vector.shape}, layout needs ({layout.n_values},)"
        )
    return {
        name: vector[start:start + size].reshape(shape).copy()
        for name, shape, start, size in zip(
            layout.names, layout.shapes, layout.offsets, layout.sizes, strict=True
        )
    }


def chunk_bounds(n_values: int, slots: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each ciphertext chunk of at most ``slots`` values.

    >>> chunk_bounds(10, 4)
    [(0, 4), (4, 8), (8, 10)]
    """
    return [(start, min(start + slots, n_values)) for start in range(0, n_values, slots)]
