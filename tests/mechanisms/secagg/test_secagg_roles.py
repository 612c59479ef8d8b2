"""Key roles: the server holds a context it can add with and cannot decrypt with."""

from __future__ import annotations

import pytest
import tenseal as ts

from privaudit.core.errors import SecureAggregationError
from privaudit.mechanisms.secagg import SecureAggregator, encrypt_update


def test_server_context_has_no_secret_key(holder):
    server = ts.context_from(holder.server_context())
    client = ts.context_from(holder.client_context())
    assert not server.has_secret_key() and server.is_public()
    assert client.has_secret_key()


def test_server_context_carries_no_galois_or_relinearisation_keys(holder):
    server = ts.context_from(holder.server_context())
    assert not server.has_galois_keys()
    assert not server.has_relin_keys()
    assert len(holder.server_context()) < 1_000  # parameters only: no key material


def test_decrypting_with_the_server_context_raises(holder, expected, updates):
    agg = SecureAggregator(holder.server_context(), expected=expected, min_clients=3)
    for update in updates.values():
        agg.add(update)
    total = agg.finish()
    server = ts.context_from(holder.server_context())
    for blob in (total.ciphertexts[0], updates["client-a"].ciphertexts[0]):
        vector = ts.ckks_vector_from(server, blob)
        with pytest.raises(ValueError, match="secret"):
            vector.decrypt()


def test_aggregator_refuses_a_context_that_holds_the_secret_key(holder, expected):
    with pytest.raises(SecureAggregationError, match="holds the secret key"):
        SecureAggregator(holder.client_context(), expected=expected, min_clients=3)


def test_client_refuses_to_encrypt_with_the_server_context(holder, deltas):
    with pytest.raises(SecureAggregationError, match="no secret key"):
        encrypt_update(deltas["client-a"], weight=1.0, round=0, client_id="a",
                       adapter_config_hash="h", context_bytes=holder.server_context())


def test_undecodable_context_bytes_raise_secure_aggregation_error(expected):
    with pytest.raises(SecureAggregationError, match="cannot deserialize"):
        SecureAggregator(b"not a context", expected=expected, min_clients=3)
