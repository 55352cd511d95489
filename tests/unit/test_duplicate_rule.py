"""Section 9's rule on a table of pairs: which accounts and contacts are likely the same,
and which are not. The PWA's module of the same rule (pwa/js/duplicates.js) is fed these
same pairs in Chromium by e2e/test_duplicates.py."""

from __future__ import annotations

import random
from typing import Any

import pytest

from server.transfer.matching import (
    account_keys,
    compare,
    contact_keys,
    domain_key,
    email_key,
    groups,
    index_of,
    name_key,
    pairs,
)

LYON = (45.7640, 4.8357)
NEAR = (45.7641, 4.8358)  # ~14 m away
FAR = (45.7660, 4.8357)  # ~220 m away


def account(name: str, at: tuple[float, float] | None = None, **fields: Any) -> dict[str, Any]:
    lat, lng = at or (None, None)
    return {"id": name, "name": name, "lat": lat, "lng": lng, **fields}


ACCOUNT_PAIRS = [
    # (a, b, the same?, reasons)
    (account("Électricité Laurent", LYON), account("ELECTRICITE LAURENT SARL", NEAR), True,
     ("name", "distance_m=14")),
    (account("Électricité Laurent", LYON), account("Laurent Électricité", NEAR), True, None),
    (account("Électricité Laurent", LYON), account("Electricite Laurent", FAR), False, None),
    (account("Électricité Laurent", LYON), account("Electricité Laurent"), False, None),
    (account("Boulangerie Martin", LYON), account("Boulangerie Dupont", NEAR), False, None),
    (account("S.A.R.L. Fleurs & Co", LYON), account("Fleurs and co.", NEAR), True, None),
    (account("Garage", phone_e164="+33478000001"), account("Other", phone_e164="+33478000001"),
     True, ("phone",)),
    (account("A", email="Jo@X.fr "), account("B", email="jo@x.fr"), True, ("email",)),
    (account("A", website="https://www.laurent.fr/contact"), account("B", website="laurent.fr"),
     True, ("domain",)),
    (account("A", website="https://facebook.com/laurent"),
     account("B", website="https://www.facebook.com/martin"), False, None),
    (account("A", email="x"), account("B", email="x"), False, None),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b", "same", "reasons"), ACCOUNT_PAIRS)
def test_accounts(a: dict[str, Any], b: dict[str, Any], same: bool, reasons: Any) -> None:
    match = compare(account_keys(a), account_keys(b))
    assert (match is not None) is same, match
    assert compare(account_keys(b), account_keys(a)) == match  # symmetric
    if match is not None:
        assert 0.0 < match.score <= 1.0
        if reasons is not None:
            assert match.reasons == reasons


def test_contacts() -> None:
    zoe = contact_keys({"id": "1", "name": "Zoé Martin", "account_id": "A", "email": "z@x.fr"})
    same_name = contact_keys({"id": "2", "name": "zoe martin", "account_id": "A"})
    elsewhere = contact_keys({"id": "3", "name": "Zoé Martin", "account_id": "B"})
    same_mail = contact_keys({"id": "4", "name": "Z.", "account_id": "B", "email": "Z@X.FR"})
    by_phone = [contact_keys({"id": i, "name": i, "account_id": i}, "+33612345678") for i in "56"]
    assert compare(zoe, same_name, "contacts") is not None
    assert compare(zoe, elsewhere, "contacts") is None
    assert compare(zoe, same_mail, "contacts") is not None
    assert compare(*by_phone, "contacts") is not None


def test_keys() -> None:
    assert name_key("Électricité Laurent S.A.R.L.") == "electricite laurent"
    assert name_key("SARL") == "sarl"  # a name that is only a legal form keeps it
    assert email_key("mailto:Jo@X.fr") == "jo@x.fr" and email_key("jo@") == ""
    assert domain_key("HTTP://WWW.Laurent.FR:8080/a?b") == "laurent.fr"
    assert domain_key("not a site") == ""


def crowd(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Accounts packed into a few hundred metres (names from few words, so many alike),
    some sharing a phone, an email or a website; one near the pole, where cells narrow."""
    words = ["Électricité", "Laurent", "Garage", "Martin", "SARL", "du", "Coin", "Café",
             "Zoé", "&", "Fils", "Dupont"]  # fmt: skip
    made = []
    for n in range(count):
        base = LYON if n % 10 else (78.2232, 15.6267)  # Longyearbyen
        lat, lng = base[0] + rng.uniform(-0.004, 0.004), base[1] + rng.uniform(-0.006, 0.006)
        made.append(
            {
                "id": f"{n:04d}",
                "name": " ".join(rng.choices(words, k=rng.randint(1, 3))),
                "lat": lat,
                "lng": lng,
                "phone_e164": f"+3347800{rng.randint(0, 300):04d}",
                "email": f"shop{rng.randint(0, 400)}@x.fr" if n % 3 else None,
                "website": f"https://shop{rng.randint(0, 400)}.fr" if n % 5 == 0 else None,
            }
        )
    return made


@pytest.mark.parametrize("seed", [1, 2])
def test_the_finder_finds_every_pair_the_rule_matches(seed: int) -> None:
    """The finder's blocking (cells, keys, names compared in C) loses no pair that testing
    every pair with the rule finds."""
    rng = random.Random(seed)
    keys = [account_keys(row) for row in crowd(rng, 600)]
    expected = {
        (a.id, b.id) for i, a in enumerate(keys) for b in keys[i + 1 :] if compare(a, b) is not None
    }
    assert len(expected) > 500  # enough of each kind of reason to mean something
    assert {(a, b) for a, b, _ in pairs(index_of("accounts", keys))} == expected
    contacts = [
        contact_keys(
            {"id": f"{n:04d}", "name": row["name"], "account_id": f"A{n % 40}",
             "email": row["email"]},
            row["phone_e164"] if n % 4 == 0 else None,
        )
        for n, row in enumerate(crowd(rng, 400))
    ]  # fmt: skip
    expected = {
        (a.id, b.id)
        for i, a in enumerate(contacts)
        for b in contacts[i + 1 :]
        if compare(a, b, "contacts") is not None
    }
    assert {(a, b) for a, b, _ in pairs(index_of("contacts", contacts))} == expected


def test_many_records_sharing_a_phone_are_one_group() -> None:
    shared = [account(f"{n:03d}", phone_e164="+33478000000") for n in range(120)]
    found = groups(index_of("accounts", [account_keys(row) for row in shared]), 10)
    assert [len(group.ids) for group in found] == [120]
    assert found[0].reasons == ["phone"] and found[0].score == 0.9
