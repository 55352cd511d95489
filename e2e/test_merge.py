"""The manager's merge screen (SPEC section 9) and rule 13 on a rep's phone: a manager
finds a duplicate from the Team screen, keeps one, picks the values, sees what moves and
merges; a rep's phone that was offline meanwhile, with the duplicate open and work on it,
comes back: its edit and its visit land on the survivor and its screen shows the survivor.
Undo brings the duplicate back to both phones. At 360 px, with large text, and offline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.merge_pages import MergeScreens
from e2e.pages import PHONE, App, Phones, Rest

SHOP = (45.7640, 4.8357)


async def seed(server: Server) -> dict[str, Any]:
    server.add_user("boss", role="manager", team="north")
    server.add_user("alice", team="north")
    alice = await Rest.login(server.url, "alice")
    try:
        keep = await alice.create(
            "accounts", name="Électricité Laurent", lat=SHOP[0], lng=SHOP[1], city="Lyon",
            website="https://laurent-elec.fr",
        )  # fmt: skip
        dup = await alice.create(
            "accounts", name="ELECTRICITE LAURENT SARL", lat=SHOP[0] + 0.0001, lng=SHOP[1],
            phone="04 78 00 00 01", country="FR", street="12 rue de la République",
        )  # fmt: skip
        await alice.create("contacts", account_id=dup["id"], name="Paul Laurent")
        await alice.create("visits", account_id=dup["id"], started_at="2026-11-30T09:00:00Z",
                           outcome="met", summary="First visit")  # fmt: skip
    finally:
        await alice.close()
    return {"keep": keep, "dup": dup}


async def signed_in(phones: Phones, server: Server, username: str) -> App:
    app = await phones.signed_in(server.url, username)
    return app


async def shoot(app: App, artifacts: Path, name: str) -> None:
    """Light and dark at 360 px: no sideways scrolling, text readable."""
    assert await app.scroll_width() <= PHONE["width"], name
    for scheme in ("light", "dark"):
        await app.page.emulate_media(color_scheme=scheme)
        await app.page.screenshot(path=artifacts / f"screen-{name}-{scheme}.png", full_page=True)
        low = await app.low_contrast()
        assert not low, f"{name} ({scheme}): text below WCAG AA contrast: {low}"
    await app.page.emulate_media(color_scheme="light")


async def test_a_manager_merges_a_duplicate_and_an_offline_phones_work_follows(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    ids = await seed(server)
    keep, dup = ids["keep"]["id"], ids["dup"]["id"]
    rep = await signed_in(phones, server, "alice")
    await rep.account.open(dup)
    await rep.set_offline(True)
    visit = str(uuid.uuid4())
    await rep.save("accounts", dup, city="Villeurbanne")
    await rep.save("visits", visit, account_id=dup, outcome="follow_up", summary="Offline visit",
                   started_at=datetime.now(UTC).isoformat())  # fmt: skip
    await rep.expect_pending(2)

    boss = await signed_in(phones, server, "boss")
    merge = MergeScreens(boss)
    await merge.open_duplicates()
    group = sorted([keep, dup])
    await expect(merge.group(*group)).to_contain_text("similar name")
    await shoot(boss, artifacts, "duplicates")
    await merge.open_group(*group)
    # The one with more values is kept by default; each differing value defaults to it,
    # or to the other's where it has none.
    assert await boss.tid("merge-survivors").locator("input:checked").get_attribute("value") == dup
    await merge.keep(keep)
    assert await merge.chosen("name") == keep
    assert await merge.chosen("phone") == dup  # the survivor has none
    assert await merge.chosen("website") == keep
    await merge.choose("position", dup)
    assert await merge.counts() == {"contacts": 1, "visits": 1}
    await expect(boss.tid("merge-gone")).to_have_attribute("data-count", "1")
    await shoot(boss, artifacts, "merge")

    # Offline the merge waits for a connection.
    await boss.set_offline(True)
    await expect(boss.tid("merge-offline")).to_be_visible()
    await expect(boss.tid("merge-confirm")).to_be_disabled()
    await boss.set_offline(False)
    await expect(boss.tid("merge-confirm")).to_be_enabled()
    await merge.confirm()
    await expect(boss.tid("merge-undo")).to_be_visible()
    await shoot(boss, artifacts, "merge-done")

    # The rep's phone comes back: its work lands on the survivor, which its screen shows.
    await rep.set_offline(False)
    await rep.synced()
    await rep.account.expect_open(keep)
    assert f"#/account/{keep}" in rep.page.url
    rows = {r["id"]: r for r in await rep.rows("visits")}
    assert rows[visit]["account_id"] == keep
    assert all(r["account_id"] == keep for r in rows.values())
    assert dup not in {r["id"] for r in await rep.rows("accounts")}
    assert (await rep.meta("merged")) == {dup: keep}
    boss_rest = await Rest.login(server.url, "boss")
    try:
        survivor = (await boss_rest.get("accounts", keep))["account"]
        assert (survivor["city"], survivor["phone"]) == ("Villeurbanne", "04 78 00 00 01")
        assert (survivor["lat"], survivor["website"]) == (
            SHOP[0] + 0.0001,
            "https://laurent-elec.fr",
        )
        assert (await boss_rest.get("visits", visit))["account_id"] == keep

        # Undo: the duplicate comes back to both phones, with its contact and first visit.
        await merge.undo()
        await expect(boss.tid("merge-status")).to_contain_text("Undone: 1 record back.")
        back = (await boss_rest.get("accounts", dup))["account"]
        assert back["name"] == "ELECTRICITE LAURENT SARL"
        assert [c["name"] for c in (await boss_rest.get("accounts", dup))["contacts"]] == [
            "Paul Laurent"
        ]
    finally:
        await boss_rest.close()
    await rep.synced()
    assert dup in {r["id"] for r in await rep.rows("accounts")}
    assert (await rep.meta("merged")) == {}
    await rep.account.open(dup)
    # The visit made offline after the merge stays where it landed.
    assert {r["id"]: r for r in await rep.rows("visits")}[visit]["account_id"] == keep

    # The merge is listed on the duplicates screen, undone.
    await merge.open_duplicates()
    await expect(boss.tid("merge-recent")).to_contain_text("Undone")
    await expect(boss.tid("merge-recent-undo")).to_be_hidden()


async def test_the_merge_screen_with_large_text_and_offline(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    ids = await seed(server)
    boss = await signed_in(phones, server, "boss")
    await boss.page.evaluate("() => { document.documentElement.style.fontSize = '200%'; }")
    merge = MergeScreens(boss)
    await merge.open_duplicates()
    await merge.open_group(*sorted([ids["keep"]["id"], ids["dup"]["id"]]))
    await shoot(boss, artifacts, "merge-200")
    await boss.set_offline(True)
    await boss.go("#/duplicates")
    await expect(boss.tid("duplicates-offline")).to_be_visible()
    await expect(boss.tid("merge-recent-none")).to_be_visible()
    await shoot(boss, artifacts, "duplicates-offline-200")
    # A rep is told the screens are for managers.
    rep = await signed_in(phones, server, "alice")
    await rep.go("#/duplicates")
    await expect(rep.tid("merge-not-manager")).to_be_visible()
