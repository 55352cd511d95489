"""What a process knows of each scope's newest seq (server/core/changelog/newest.py), from
the notifications it hears: always an upper bound."""

from __future__ import annotations

import json

from server.core.changelog.newest import MAX_PAYLOAD, Newest, payload, scope_keys


def test_a_change_raises_its_scope_and_the_patterns_over_it() -> None:
    assert scope_keys("review:ab12:cd34") == ["review:ab12:cd34", "review:*", "review:ab12:*"]
    newest = Newest()
    newest.primed(10)
    newest.heard(payload(14, {"team:north": 12, "review:north:u1": 14}))
    assert newest.newest(("team:north",)) == 12
    assert newest.newest(("team:south", "user:u2")) == 10  # the floor: nothing heard since
    assert newest.newest(("team:south", "review:north:*")) == 14  # a manager's pattern
    assert newest.newest(None) == 14  # an admin: every scope
    assert newest.newest(("review:nor*",)) is None  # a pattern not at a ":": unsure


def test_what_is_heard_while_priming_counts_once_primed() -> None:
    newest = Newest()
    newest.priming = True
    newest.heard(payload(12, {"team:north": 12}))  # committed after the seq priming reads
    assert not newest.live
    newest.primed(11)
    assert newest.live and newest.known == 12
    assert newest.newest(("team:north",)) == 12


def test_a_commit_of_too_many_scopes_raises_the_floor() -> None:
    many = {f"team:{n:040d}": n for n in range(1, 400)}
    text = payload(500, many)
    assert len(text) <= MAX_PAYLOAD and json.loads(text)["scopes"] is None
    newest = Newest()
    newest.primed(10)
    newest.heard(payload(20, {"team:north": 20}))
    newest.heard(text)
    assert newest.newest(("team:anything",)) == 500 and newest.known == 500


def test_an_unreadable_notification_forgets_everything() -> None:
    newest = Newest()
    newest.primed(10)
    newest.heard("not json")
    assert not newest.live
