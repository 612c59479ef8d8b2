"""Secure aggregation inside the federation: clients encrypt, the server adds ciphertexts
holding no secret key, the key holder decrypts the sum only."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import tenseal as ts

from privaudit.core.errors import SecureAggregationError
from privaudit.mechanisms.federated import secure
from privaudit.mechanisms.federated.privacy import secure_aggregation_report
from privaudit.mechanisms.federated.train import train_federation
from privaudit.mechanisms.secagg import EncryptedUpdate, plaintext_weighted_mean

Federation = Any  # tests/mechanisms/federated/conftest.py
HE = {"secure_aggregation": {"enabled": True, "masking": "none"}, "federation": {"clients": 3}}


def _train(fed: Federation, **kw: Any) -> Any:
    return train_federation(fed.cfg.recipe, fed.bundle, fed.clients, fed.test,
                            initial_state=fed.initial_state(), seed=fed.cfg.seed, **kw)


def _flat(state: dict[str, Any]) -> np.ndarray:
    return np.concatenate([np.asarray(state[k], dtype=np.float64).ravel() for k in sorted(state)])


def test_a_real_round_decrypts_to_the_plaintext_fedavg_within_1e_6_of_the_update_scale(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(HE)
    previous = [fed.initial_state()]
    checked: list[float] = []

    def check(r: int, state: Any, updates: Any, rec: Any) -> None:
        want = plaintext_weighted_mean([u.delta for u in updates],
                                       [float(u.n_examples) for u in updates])
        got = _flat(state) - _flat(previous[-1])
        scale = float(np.max(np.abs(_flat(want))))
        err = float(np.max(np.abs(got - _flat(want))))
        assert err <= 1e-6 * scale, (err, scale)
        assert rec.aggregation.secure_aggregation.max_abs_error <= 1e-6 * scale
        checked.append(err)
        previous.append({k: v.clone() for k, v in state.items()})

    _train(fed, on_round=check)
    assert len(checked) == 2


def test_training_with_he_reaches_the_same_adapter_and_utility_as_without(
    federation: Callable[..., Federation],
) -> None:
    plain_fed = federation({"federation": {"clients": 3}})
    plain = _train(plain_fed)
    he_fed = federation(HE)
    encrypted = _train(he_fed)
    diff = np.max(np.abs(_flat(plain.final_state) - _flat(encrypted.final_state)))
    assert diff < 1e-5
    assert encrypted.rounds[-1].utility == pytest.approx(plain.rounds[-1].utility, abs=0.03)


def test_the_server_in_the_training_path_only_ever_gets_a_context_without_secret_key(
    federation: Callable[..., Federation], monkeypatch: pytest.MonkeyPatch
) -> None:
    contexts: list[bytes] = []
    real = secure.SecureAggregator

    def spy(server_context: bytes, **kw: Any) -> Any:
        contexts.append(server_context)
        return real(server_context, **kw)

    monkeypatch.setattr(secure, "SecureAggregator", spy)
    _train(federation(HE))
    assert len(contexts) == 2
    assert not any(ts.context_from(c).has_secret_key() for c in contexts)


def _flip_first_ciphertext(update: EncryptedUpdate) -> EncryptedUpdate:
    blob = bytearray(update.ciphertexts[0])
    blob[len(blob) // 2] ^= 0xFF
    return dataclasses.replace(update, ciphertexts=(bytes(blob), *update.ciphertexts[1:]))


def _with(update: EncryptedUpdate, **manifest: Any) -> EncryptedUpdate:
    return dataclasses.replace(update, manifest=update.manifest.model_copy(update=manifest))


def _tamper(round_to_spoil: int) -> Callable[[EncryptedUpdate], Sequence[EncryptedUpdate]]:
    def channel(update: EncryptedUpdate) -> Sequence[EncryptedUpdate]:
        m = update.manifest
        if m.round != round_to_spoil:
            return (update,)
        if m.client_id == "client-0":  # bytes flipped in transit
            return (_flip_first_ciphertext(update),)
        if m.client_id == "client-1":  # a manifest with a wrong shape
            shapes = ((9, 9), *m.shapes[1:])
            return (_with(update, shapes=shapes),)
        if m.client_id == "client-2":  # a stale round
            return (_with(update, round=m.round - 1),)
        if m.client_id == "client-3":  # replayed
            return (update, update)
        return (update,)

    return channel


def test_tampered_wrong_shape_stale_and_duplicate_updates_are_rejected_by_name(
    federation: Callable[..., Federation],
) -> None:
    fed = federation({"secure_aggregation": {"enabled": True, "masking": "none"},
                     "federation": {"clients": 6}})
    records: list[Any] = []
    seen: list[Any] = []
    result = _train(fed, channel=_tamper(2), on_round=lambda r, s, u, rec: (
        records.append(rec), seen.append((s, u))))
    log = records[1].aggregation.secure_aggregation
    reasons = {(x.client_id, x.reason) for x in log.rejections}
    assert reasons == {("client-0", "ciphertext_digest_mismatch"),
                       ("client-1", "layout_mismatch"), ("client-2", "stale_round"),
                       ("client-3", "duplicate_client")}
    assert sorted(log.accepted) == ["client-3", "client-4", "client-5"]
    assert records[0].aggregation.secure_aggregation.rejections == []
    # the round went on with the accepted updates only
    (before, _), (after, updates) = seen
    kept = [u for u in updates if u.client_id in log.accepted]
    want = plaintext_weighted_mean([u.delta for u in kept], [float(u.n_examples) for u in kept])
    got = _flat(after) - _flat(before)
    assert np.max(np.abs(got - _flat(want))) < 1e-7
    section = secure_aggregation_report(fed.cfg.recipe, result.privacy)
    assert {(x.client_id, x.round, x.reason) for x in section.rejections} == {
        (c, 2 if reason != "stale_round" else 1, reason) for c, reason in reasons}


def _spoil(client: str, r: int, how: str) -> Callable[[EncryptedUpdate], Sequence[Any]]:
    def channel(u: EncryptedUpdate) -> Sequence[EncryptedUpdate]:
        if (u.manifest.client_id, u.manifest.round) != (client, r):
            return (u,)
        return () if how == "drop" else (_flip_first_ciphertext(u),)

    return channel


@pytest.mark.parametrize("how, named", [("tamper", r"client-2: ciphertext_digest_mismatch"),
                                        ("drop", r"never received: client-2")])
def test_fewer_than_min_clients_fails_the_round_naming_who_is_missing(
    federation: Callable[..., Federation], how: str, named: str
) -> None:
    fed = federation(HE)
    done: list[int] = []
    with pytest.raises(SecureAggregationError, match=rf"round 2: 2 update\(s\) accepted.*{named}"):
        _train(fed, channel=_spoil("client-2", 2, how),
               on_round=lambda r, s, u, rec: done.append(r))
    assert done == [1]  # round 2 never reached on_round: nothing persisted for it


def test_he_composes_with_record_dp_on_a_causal_lm(federation: Callable[..., Federation]) -> None:
    fed = federation(HE | {
        "data": {"public_records": 20},
        "model": {"task": "causal-lm", "pretrain": {"epochs": 0}},
        "federation": {"clients": 3, "rounds": 1},
        "privacy": {"dp": {"mode": "record", "noise_multiplier": 1.0, "delta": 1e-5}},
    })
    records: list[Any] = []
    result = _train(fed, on_round=lambda r, s, u, rec: records.append(rec))
    log = records[0].aggregation.secure_aggregation
    assert sorted(log.accepted) == ["client-0", "client-1", "client-2"]
    assert log.max_abs_error is not None and log.max_abs_error < 1e-7
    assert records[0].utility_metric == "perplexity"
    assert result.privacy is not None and result.privacy.epsilon() > 0
