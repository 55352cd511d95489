"""The scope version a sync cursor carries (server/syncing/services.py): a device that
pulled under what its user saw before is reset, and nobody else is."""

from __future__ import annotations

from server.core.actor import Actor
from server.syncing.services import RESCOPED, for_client, for_engine, split_cursor
from sync.cursor import decode_cursor
from sync.protocol import Ack, SyncRequest, SyncResponse

ENGINE_CURSOR = "1.0123456789abcdef.42.40.0"


def actor(version: int) -> Actor:
    return Actor(user_id="u", username="ada", role="rep", team_id="t", scope_version=version)


def request(cursor: str | None) -> SyncRequest:
    return SyncRequest(protocol=1, client_id="c", cursor=cursor)


def response(cursor: str) -> SyncResponse:
    return SyncResponse(
        ack=Ack(last_mid=0, results=[]),
        changes=[],
        cursor=cursor,
        has_more=False,
        reset=False,
        server_time=0,
        hlc_max=(0, 0),
    )


def test_cursors_are_unchanged_while_the_version_is_0() -> None:
    assert for_client(response(ENGINE_CURSOR), actor(0)).cursor == ENGINE_CURSOR
    assert for_engine(request(ENGINE_CURSOR), actor(0)).cursor == ENGINE_CURSOR
    assert for_engine(request(None), actor(3)).cursor is None  # a first sync


def test_a_cursor_carries_its_version_to_the_client_and_back() -> None:
    stamped = for_client(response(ENGINE_CURSOR), actor(2)).cursor
    assert stamped == f"{ENGINE_CURSOR}~2"
    assert split_cursor(stamped) == (ENGINE_CURSOR, 2)
    assert for_engine(request(stamped), actor(2)).cursor == ENGINE_CURSOR


def test_a_cursor_of_another_version_is_one_the_engine_does_not_honour() -> None:
    # From before the change (no version, or an older one); or stamped by a request that
    # began before the change and pulled the old scope while it landed.
    for cursor in (ENGINE_CURSOR, f"{ENGINE_CURSOR}~1", f"{ENGINE_CURSOR}~3"):
        assert for_engine(request(cursor), actor(2)).cursor == RESCOPED
    assert decode_cursor(RESCOPED) is None


def test_what_is_not_a_version_is_left_to_the_engine() -> None:
    for cursor in ("garbage", "a~b", "~", f"{ENGINE_CURSOR}~-1", f"{ENGINE_CURSOR}~1e3"):
        assert split_cursor(cursor) == (cursor, 0)
    assert for_engine(request("x~"), actor(0)).cursor == "x~"
