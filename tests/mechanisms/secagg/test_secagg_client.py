"""Client-side packing and encryption: layout, refusals before anything is encrypted."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from privaudit.core.errors import SecureAggregationError
from privaudit.mechanisms.secagg import TensorLayout, encrypt_update, flatten, unflatten


def test_flatten_orders_tensors_by_sorted_name_and_unflatten_restores_them():
    delta = {"b": np.arange(6.0).reshape(2, 3), "a": np.array([10.0, 11.0]), "c": np.zeros((0,))}
    vector, layout = flatten(delta)
    assert layout.names == ("a", "b", "c")
    assert layout.offsets == (0, 2, 8) and layout.n_values == 8
    np.testing.assert_array_equal(vector, [10, 11, 0, 1, 2, 3, 4, 5])
    back = unflatten(vector, layout)
    assert {k: v.shape for k, v in back.items()} == {"a": (2,), "b": (2, 3), "c": (0,)}
    np.testing.assert_array_equal(back["b"], delta["b"])


def test_layout_refuses_unsorted_names():
    with pytest.raises(SecureAggregationError, match="sorted"):
        TensorLayout(("b", "a"), ((1,), (1,)))


def test_manifest_describes_the_update_in_plaintext(updates, weights, config_hash, round_number):
    m = updates["client-b"].manifest
    assert (m.client_id, m.round, m.adapter_config_hash) == ("client-b", round_number, config_hash)
    assert m.weight == weights["client-b"]
    assert m.names == tuple(sorted(m.names)) and len(m.shapes) == len(m.offsets) == len(m.names)
    assert len(m.ciphertext_sha256) == m.n_ciphertexts == len(updates["client-b"].ciphertexts)


@pytest.mark.parametrize("weight", [0.0, -1.0, float("nan"), float("inf")])
def test_non_positive_or_non_finite_weight_is_refused(holder, deltas, weight):
    with pytest.raises(SecureAggregationError, match=r"encrypt_update\.weight"):
        encrypt_update(deltas["client-a"], weight=weight, round=0, client_id="a",
                       adapter_config_hash="h", context_bytes=holder.client_context())


def test_non_finite_delta_is_refused_naming_the_tensor(holder):
    delta = {"ok": np.zeros(3), "broken": np.array([1.0, np.nan])}
    with pytest.raises(SecureAggregationError, match="broken"):
        encrypt_update(delta, weight=1.0, round=0, client_id="a", adapter_config_hash="h",
                       context_bytes=holder.client_context())


def test_weighted_update_over_max_abs_value_is_refused(holder):
    delta = {"w": np.array([0.5, -3.0])}
    kwargs = dict(round=0, client_id="a", adapter_config_hash="h",
                  context_bytes=holder.client_context())
    assert encrypt_update(delta, weight=2.0, max_abs_value=6.0, **kwargs).manifest.n_values == 2
    with pytest.raises(SecureAggregationError, match="max_abs_value"):
        encrypt_update(delta, weight=2.0, max_abs_value=5.9, **kwargs)


@given(st.dictionaries(
    st.text("abcxyz._", min_size=1, max_size=6),
    st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple),
    max_size=5,
))
def test_unflatten_inverts_flatten_for_any_layout(shapes):
    rng = np.random.default_rng(0)
    delta = {name: rng.normal(size=shape) for name, shape in shapes.items()}
    vector, layout = flatten(delta)
    assert vector.shape == (layout.n_values,)
    back = unflatten(vector, layout)
    assert back.keys() == delta.keys()
    for name in delta:
        np.testing.assert_array_equal(back[name], delta[name])
