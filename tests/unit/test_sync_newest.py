"""What a process knows of each scope's newest seq (server/core/changelog/newest.py), from
the notifications it hears: always an upper bound."""

from __future__ import annotations

import json

from server.core.changelog.newest import MAX_PAYLOAD, Newest, payload, scope_keys


def test_a_change_raises_its_scope_and_the_patterns_over_it() -> None:
    """PostgreSQL: bounds per scope, and per team for the scopes nothing was heard of;
    an admin (every scope) or scopes of no one team are never answered from them."""
    assert scope_keys("review:ab12:cd34") == ["review:ab12:cd34", "review:*", "review:ab12:*"]
    newest = Newest()
    newest.primed(10, 3, {"north": 10, "south": 8})
    newest.heard(payload(14, {"team:north": 12, "review:north:u1": 14}, 4, {"north": 14}))
    assert newest.commits == 4 and newest.known == 14
    assert newest.newest(("team:north", "user:u1")) == 12
    assert newest.newest(("team:south", "user:u2")) == 8  # the south's floor: nothing heard
    assert newest.newest(("team:north", "user:m", "review:north:*")) == 14  # a manager
    assert newest.newest(None) is None  # an admin: seqs are in order per team only
    assert newest.newest(("team:north", "team:south")) is None
    assert newest.newest(("team:north", "review:nor*")) is None  # a pattern not at a ":"


def test_with_one_writer_the_bounds_are_one_order() -> None:
    """SQLite: primed with no floors per team; the floor is the seq read."""
    newest = Newest()
    newest.primed(10)
    newest.heard(payload(14, {"team:north": 12, "review:north:u1": 14}, 1, {"": 14}))
    assert newest.newest(("team:south", "user:u2")) == 10
    assert newest.newest(("team:south", "review:north:*")) == 14
    assert newest.newest(None) == 14


def test_what_is_heard_while_priming_counts_once_primed() -> None:
    newest = Newest()
    newest.priming = True
    # Committed after the state priming reads.
    newest.heard(payload(12, {"team:north": 12}, 5, {"north": 12}))
    assert not newest.live
    newest.primed(11, 4, {"north": 11})
    assert newest.live and newest.known == 12 and newest.commits == 5
    assert newest.newest(("team:north",)) == 12


def test_a_commit_of_too_many_scopes_raises_its_teams_floors() -> None:
    many = {f"user:{n:036d}": n for n in range(1, 400)}
    text = payload(500, many, 9, {"north": 500})
    assert len(text) <= MAX_PAYLOAD and json.loads(text)["scopes"] is None
    newest = Newest()
    newest.primed(10, 8, {"north": 10, "south": 7})
    newest.heard(payload(20, {"team:north": 20}, 8, {"north": 20}))
    newest.heard(text)
    assert newest.newest(("team:north", "user:x")) == 500 and newest.known == 500
    assert newest.newest(("team:south", "user:y")) == 7  # another team: as it was
    assert newest.commits == 9


def test_a_commit_of_too_many_teams_starts_again() -> None:
    domains = {f"{n:032x}": n for n in range(1, 400)}
    text = payload(500, {f"team:{d}": n for d, n in domains.items()}, 9, domains)
    assert json.loads(text)["scopes"] is None and "domains" not in json.loads(text)
    newest = Newest()
    newest.primed(10, 8, {})
    newest.heard(text)
    assert not newest.live  # the next poll primes again, from the database's counters


def test_an_unreadable_notification_forgets_everything() -> None:
    newest = Newest()
    newest.primed(10)
    newest.heard("not json")
    assert not newest.live
