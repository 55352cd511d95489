"""Duplicates caught on the phone (SPEC section 9), offline: the PWA's rule against the
server's on the same pairs, then Nearby's "capture here" and the new-account form warning
before saving a prospect the phone already holds, with "open it" and "save anyway"."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from geographiclib.geodesic import Geodesic
from playwright.async_api import expect
from rapidfuzz import fuzz

from e2e.conftest import Server
from e2e.nearby_pages import NearbyScreen
from e2e.pages import PHONE, Phones, Rest
from server.transfer.matching import account_keys, compare, name_key
from tests.unit.test_duplicate_rule import ACCOUNT_PAIRS

SHOP = (45.7640, 4.8357)
end = Geodesic.WGS84.Direct(SHOP[0], SHOP[1], 60.0, 18.0)
HERE = {"latitude": end["lat2"], "longitude": end["lon2"], "accuracy": 10}

JS_COMPARE = """async (pairs) => {
    const m = await import("/js/duplicates.js");
    return pairs.map(([a, b]) => m.compareAccounts(a, b));
}"""
JS_NAMES = """async (pairs) => {
    const m = await import("/js/duplicates.js");
    return pairs.map(([a, b]) => [m.nameKey(a), m.nameKey(b),
        m.nameSimilarity(m.nameKey(a), m.nameKey(b))]);
}"""
WORDS = ["Électricité", "Laurent", "SARL", "Boulangerie", "du", "Coin", "S.A.", "Fleurs",
         "&", "Co", "Garage", "Martin", "Dupont", "l'Église", "Café", "Œuvre", "Müller",
         "GmbH"]  # fmt: skip


async def test_the_phone_and_the_server_apply_the_same_rule(server: Server, phones: Phones) -> None:
    app = await phones.open(server.url)
    await app.open()
    pairs = [[a, b] for a, b, *_ in ACCOUNT_PAIRS]
    found = await app.page.evaluate(JS_COMPARE, pairs)
    for (a, b), phone in zip(pairs, found, strict=True):
        match = compare(account_keys(a), account_keys(b))
        assert (phone is None) == (match is None), (a, b, phone, match)
        if match is not None:
            assert tuple(phone["reasons"]) == match.reasons
            assert abs(phone["score"] - match.score) <= 0.001

    rng = random.Random(9)
    names = [
        [" ".join(rng.choices(WORDS, k=rng.randint(1, 4))) for _ in range(2)] for _ in range(300)
    ]
    for (a, b), (key_a, key_b, similarity) in zip(
        names, await app.page.evaluate(JS_NAMES, names), strict=True
    ):
        assert (key_a, key_b) == (name_key(a), name_key(b)), (a, b)
        expected = fuzz.token_sort_ratio(key_a, key_b) / 100 if key_a and key_b else 0
        assert abs(similarity - expected) < 1e-9, (a, b)


async def test_a_prospect_already_there_is_shown_before_saving(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    server.add_user("alice", team="north")
    alice = await Rest.login(server.url, "alice")
    try:
        shop: dict[str, Any] = await alice.create(
            "accounts", name="Électricité Laurent", lat=SHOP[0], lng=SHOP[1],
            phone="04 78 00 00 01", country="FR",
        )  # fmt: skip
        assert shop["phone_e164"] == "+33478000001"
    finally:
        await alice.close()
    app = await phones.open(server.url, permissions=["geolocation"], geolocation=HERE)
    nearby = NearbyScreen(app)
    await app.open()
    await app.login("alice")
    await app.wait_controlled()
    await app.synced()
    await nearby.open()  # once online: the map's script is then kept for offline use
    await nearby.located()
    await app.set_offline(True)

    await app.tid("nearby-capture").click()
    await app.tid("capture-name").fill("ELECTRICITE LAURENT SARL")
    await app.tid("capture-save").click()
    warning = app.tid("duplicate-warning")
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text("Électricité Laurent, 18 m away")
    assert await app.scroll_width() <= PHONE["width"]
    await app.tid("capture-form").screenshot(path=artifacts / "screen-capture-duplicate.png")
    await warning.get_by_test_id("duplicate-open").click()
    await app.account.expect_open(shop["id"])

    # Saving anyway is allowed: a second account, as the rep asked.
    await nearby.open()
    await nearby.located()
    await app.tid("nearby-capture").click()
    await app.tid("capture-name").fill("Electricite Laurent")
    await app.tid("capture-save").click()
    await expect(warning).to_be_visible()
    await warning.get_by_test_id("duplicate-save-anyway").click()
    await expect(app.tid("capture-form")).to_be_hidden()

    # The new-account form: the same phone, written another way, is the same place.
    accounts = app.accounts
    await accounts.open()
    await accounts.new_account()
    await app.account_form.fill(name="Laurent Élec (dépôt)", phone="04.78.00.00.01")
    await app.tid("account-form").get_by_test_id("form-save").click()
    await expect(app.tid("duplicate-warning")).to_contain_text("same phone")
    await app.tid("duplicate-save-anyway").click()
    await expect(app.tid("account-form")).to_have_count(0)

    await app.set_offline(False)
    await app.synced()
    alice = await Rest.login(server.url, "alice")
    try:
        names = sorted(a["name"] for a in await alice.list("accounts"))
        assert names == ["Electricite Laurent", "Laurent Élec (dépôt)", "Électricité Laurent"]
    finally:
        await alice.close()
