"""One client's side of a masked round (privaudit.mechanisms.secagg.party): sealed shares
open for their holder only, releases never unmask a client both ways, adverts must be signed,
and a party survives being stored between messages (as a Flower node stores it)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from privaudit.core.errors import SecureAggregationError
from privaudit.mechanisms.secagg.party import MaskingParty, SealedShare, recover_seeds
from privaudit.mechanisms.secagg.signing import ClientIdentity

IDS = ["a", "b", "c", "d"]


def _round(threshold: int = 3) -> tuple[dict[str, MaskingParty], list[SealedShare]]:
    identities = {c: ClientIdentity.generate() for c in IDS}
    registry = {c: i.public_key for c, i in identities.items()}
    parties = {c: MaskingParty(c, 1, identities[c]) for c in IDS}
    adverts = [p.advert() for p in parties.values()]
    sealed = [s for p in parties.values() for s in p.deal(adverts, registry, threshold=threshold)]
    return parties, sealed


def test_each_holder_opens_the_shares_sealed_to_it_and_survivors_recover_a_dropped_key(
) -> None:
    parties, sealed = _round()
    for c, p in parties.items():
        p.receive([s for s in sealed if s.holder == c])
        assert sorted(p.held) == IDS
    releases = [parties[s].release(survivors=["a", "b", "c"], dropped=["d"])
                for s in ("a", "b", "c")]
    pair, own = recover_seeds(releases, parties["a"].adverts, survivors=["a", "b", "c"],
                              dropped=["d"], threshold=3, round=1)
    assert pair["d"] == {s: parties["d"].seeds[s] for s in ("a", "b", "c")}
    assert own == {s: parties[s].self_seed for s in ("a", "b", "c")}


def test_a_share_altered_in_transit_or_handed_to_another_holder_is_refused() -> None:
    parties, sealed = _round()
    to_b = next(s for s in sealed if s.holder == "b")
    with pytest.raises(SecureAggregationError, match="does not open"):
        parties["b"].receive([replace(to_b, blob=to_b.blob[:-1] + bytes([to_b.blob[-1] ^ 1]))])
    with pytest.raises(SecureAggregationError, match="was handed a share"):
        parties["c"].receive([to_b])
    with pytest.raises(SecureAggregationError, match="does not open"):  # relabelled for c
        parties["c"].receive([replace(to_b, holder="c")])


def test_a_survivor_never_releases_both_secrets_of_one_client() -> None:
    parties, sealed = _round()
    for c, p in parties.items():
        p.receive([s for s in sealed if s.holder == c])
    first = parties["a"].release(survivors=["a", "b", "c"], dropped=["d"])
    assert set(first.key_shares) == {"d"} and set(first.self_shares) == {"a", "b", "c"}
    assert parties["a"].release(survivors=["a", "b", "c"], dropped=["d"]) == first  # same ask
    with pytest.raises(SecureAggregationError, match="already released"):  # c now "dropped"
        parties["a"].release(survivors=["a", "b", "d"], dropped=["c"])
    with pytest.raises(SecureAggregationError, match="exactly one of the two"):
        parties["b"].release(survivors=["a", "b", "c", "d"], dropped=["d"])


def test_an_advert_not_signed_by_the_registered_identity_stops_the_agreement() -> None:
    identities = {c: ClientIdentity.generate() for c in IDS}
    registry = {c: i.public_key for c, i in identities.items()}
    parties = {c: MaskingParty(c, 1, identities[c]) for c in IDS}
    adverts = [p.advert() for p in parties.values()]
    impostor = MaskingParty("d", 1, ClientIdentity.generate()).advert()  # the server's own key
    with pytest.raises(SecureAggregationError, match="d's masking keys are not signed"):
        parties["a"].deal([*adverts[:3], impostor], registry, threshold=3)
    stale = MaskingParty("d", 0, identities["d"]).advert()  # signed for another round
    with pytest.raises(SecureAggregationError, match="for this round"):
        parties["a"].deal([*adverts[:3], stale], registry, threshold=3)


def test_a_party_stored_between_messages_keeps_its_seeds_shares_and_release() -> None:
    parties, sealed = _round()
    a = parties["a"]
    a.receive([s for s in sealed if s.holder == "a"])
    a.release(survivors=["a", "b", "c"], dropped=["d"])
    back = MaskingParty.from_json(a.to_json(), a.identity)
    assert back.seeds == a.seeds and back.held == a.held and back.self_seed == a.self_seed
    assert back.advert().message() == a.advert().message()
    with pytest.raises(SecureAggregationError, match="already released"):
        back.release(survivors=["a", "b", "d"], dropped=["c"])
