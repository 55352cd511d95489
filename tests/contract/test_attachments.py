"""The sync rules (SPEC section 4) for `attachments` rows (v1.1, section 13), on SQLite and
PostgreSQL: per-field merge with a conflicts row, deletes win, fixed fields, a refused
write kept whole, and rule 11 (a photo taken before its author moved team still lands)."""

from __future__ import annotations

from typing import Any

import pytest

from server import db
from server.auth.services import change_user
from tests.contract.helpers import Device, new_id, now_ms
from tests.factories import login_as

PHOTO = {"sha256": "a1" * 32, "media_type": "image/jpeg", "bytes": 120_000}


def results(data: dict[str, Any]) -> list[str]:
    return [r["status"] for r in data["ack"]["results"]]


@pytest.fixture
async def shop(client: Any) -> tuple[Device, Device, Device, str, str]:
    """A rep and a manager of north with a device each, a rep of south; north's account and
    a photo on it, pulled by both north phones."""
    alice = Device(client, await login_as(client, "rep", "north"))
    bob = Device(client, await login_as(client, "manager", "north"))
    carol = Device(client, await login_as(client, "rep", "south"))
    account, photo = new_id(), new_id()
    made = now_ms() - 120_000
    data = await alice.sync(
        alice.write("accounts", account, {"name": "Épicerie Morel"}, hlc=(made, 0)),
        alice.write("attachments", photo, {**PHOTO, "account_id": account}, hlc=(made, 1)),
    )
    assert results(data) == ["applied", "applied"]
    await alice.pull_all()
    await bob.pull_all()
    return alice, bob, carol, account, photo


async def test_captions_merge_per_field_and_the_loser_is_kept(shop: Any) -> None:
    alice, bob, carol, _, photo = shop
    now = now_ms()
    late = await bob.sync(bob.write("attachments", photo, {"caption": "Front"}, hlc=(now, 5)))
    early = await alice.sync(
        alice.write("attachments", photo, {"caption": "Shelf", "lat": 45.7}, hlc=(now, 1))
    )
    assert results(late) == ["applied"] and results(early) == ["merged"]
    await carol.pull_all()
    assert carol.row("attachments", photo) is None  # another team's
    await alice.pull_all()
    row = alice.row("attachments", photo)
    assert row is not None and (row["caption"], row["lat"]) == ("Front", 45.7)
    lost = [c for c in alice.conflicts() if c["record_id"] == photo]
    assert [(c["field"], c["lost_value"]) for c in lost] == [("caption", "Shelf")]


async def test_a_delete_wins_over_a_later_edit(shop: Any) -> None:
    alice, bob, _, _, photo = shop
    gone = await alice.sync(alice.write("attachments", photo, op="delete"))
    assert results(gone) == ["applied"]
    late = await bob.sync(bob.write("attachments", photo, {"caption": "Too late"}))
    assert results(late) == ["rejected"]
    assert late["ack"]["results"][0]["error"]["error"] == "deleted"
    assert bob.row("attachments", photo) is None


async def test_what_the_bytes_are_is_fixed_and_a_refused_write_is_kept(shop: Any) -> None:
    alice, _, _, _, photo = shop
    data = await alice.sync(
        alice.write("attachments", photo, {"sha256": "b2" * 32}),
        alice.write("attachments", photo, {"uploaded": True}),
        alice.write("attachments", photo, {"sha256": PHOTO["sha256"], "caption": "Same bytes"}),
    )
    assert results(data) == ["rejected", "rejected", "applied"]
    errors = [r["error"]["error"] for r in data["ack"]["results"][:2]]
    assert errors == ["read_only", "read_only"]
    kept = await db.fetch("SELECT error FROM rejections WHERE record_id = {} ORDER BY mid", photo)
    assert [r["error"] for r in kept] == ["read_only", "read_only"]
    row = alice.row("attachments", photo)
    assert row is not None and row["sha256"] == PHOTO["sha256"] and row["uploaded"] is False


async def test_a_photo_taken_before_its_author_moved_team_still_lands(shop: Any) -> None:
    alice, bob, carol, account, _ = shop
    visit, photo = new_id(), new_id()
    taken = now_ms() - 60_000  # a minute before the move, offline
    offline = [
        alice.write("visits", visit, {"account_id": account, "started_at": "2026-12-01T09:00:00Z"},
                    hlc=(taken, 0)),
        alice.write("attachments", photo, {**PHOTO, "visit_id": visit}, hlc=(taken, 1)),
    ]  # fmt: skip
    moved = await change_user(alice.login.username, team="south")
    assert moved.rescoped
    data = await alice.sync(*offline)
    assert results(data) == ["applied", "applied"], data["ack"]
    await bob.pull_all()
    landed = bob.row("attachments", photo)
    assert landed is not None and landed["account_id"] == account
    assert landed["author_id"] == alice.login.user_id
    await carol.pull_all()
    assert carol.row("attachments", photo) is None
