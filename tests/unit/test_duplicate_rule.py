"""Section 9's rule on a table of pairs: which accounts and contacts are likely the same,
and which are not. The PWA's module of the same rule (pwa/js/duplicates.js) is fed these
same pairs in Chromium by e2e/test_duplicates.py."""

from __future__ import annotations

from typing import Any

import pytest

from server.transfer.matching import (
    account_keys,
    compare,
    contact_keys,
    domain_key,
    email_key,
    name_key,
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
