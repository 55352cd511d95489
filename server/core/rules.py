"""The CRM's rules for writes, whichever way they arrive (a phone's sync, REST, or a job of
the server's): who may write what, references must point at records the writer sees,
server-kept fields are filled in, a visit's check-in is verified against its account's
position, and which scope a record is in. The sync engine calls them through
`sync.engine.RecordRules` (`RULES` here); the storage session never does."""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from geopy.distance import geodesic

from server import db
from server.core import automation, limits
from server.core.actor import SERVER_CLIENT_ID, Actor, review_scope, team_scope, user_scope
from server.core.erased import ERASED_DETAIL, is_erased
from server.core.fields import (
    ATTACHMENT_PARENTS,
    FIXED,
    SERVER_MADE,
    TABLES,
    clean_fields,
    defaults,
)
from server.core.phones import e164
from server.core.rows import normalize, now_ms
from server.core.session import Session
from sync.clock import Stamp
from sync.engine import DELETED_STAMP, StoredRecord
from sync.protocol import Mutation, Rejected

CHECKIN_RADIUS_M = 200.0  # a check-in this close to the account (after accuracy) is verified
MAX_ACCURACY_M = 250.0  # a position vaguer than this cannot verify anything


async def prepare_create(
    session: Session, actor: Actor, table: str, fields: dict[str, Any], at_ms: int = 0
) -> dict[str, Any]:
    if table in SERVER_MADE:
        raise Rejected("read_only", f"{table.capitalize()} are made by the server, not by clients.")
    values = _clean(actor, table, fields, creating=True)
    if table == "attachments":
        await _attachment_account(session, actor, values, None, at_ms)
    await _check_references(session, actor, table, values, None, at_ms)
    return values


async def prepare_update(
    session: Session,
    actor: Actor,
    record: StoredRecord,
    fields: dict[str, Any],
    at_ms: int = 0,
) -> dict[str, Any]:
    table = record.table
    if table in SERVER_MADE:
        if not isinstance(fields, dict) or set(fields) - {"resolved"}:
            raise Rejected("read_only", f"Only {table}.resolved may be written by a client.")
        if not isinstance(fields.get("resolved", False), bool):
            raise Rejected("invalid", f"{table}.resolved must be true or false.")
        return dict(fields)
    values = _clean(actor, table, fields, creating=False)
    for name in FIXED.get(table, ()):
        if name in values and values[name] != record.values.get(name):
            raise Rejected(
                "read_only", f"{table}.{name} is fixed once made; make a new {table[:-1]}."
            )
    if table == "attachments" and set(values) & set(ATTACHMENT_PARENTS):
        await _attachment_account(session, actor, values, record, at_ms)
    await _check_references(session, actor, table, values, record, at_ms)
    return values


async def _attachment_account(
    session: Session,
    actor: Actor,
    values: dict[str, Any],
    record: StoredRecord | None,
    at_ms: int,
) -> None:
    """An attachment hangs off a visit, a note or an account (at least one), all of one
    account: when the write names none, the visit's or the note's (put in `values`)."""
    merged = {**(record.values if record is not None else {}), **values}
    if not any(merged.get(name) for name in ATTACHMENT_PARENTS):
        raise Rejected("required", "attachments needs visit_id, note_id or account_id.")
    if record is not None and "account_id" in values and values["account_id"] is None:
        raise Rejected("invalid", "attachments.account_id cannot be null once made.")
    for name, table in (("visit_id", "visits"), ("note_id", "notes")):
        if not merged.get(name):
            continue
        parent = await session.load(table, merged[name])
        if parent is None or not (
            actor.sees(parent.scope) or await _moved_with_account(session, actor, parent, at_ms)
        ):
            raise Rejected("not_found", f"attachments.{name} names no {table[:-1]} you can see.")
        account_id = parent.values.get("account_id")
        if not merged.get("account_id"):
            merged["account_id"] = values["account_id"] = account_id
        elif merged["account_id"] != account_id:
            raise Rejected(
                "invalid", f"attachments.{name} names a {table[:-1]} of another account."
            )


def _clean(actor: Actor, table: str, fields: Any, *, creating: bool) -> dict[str, Any]:
    """A write's fields checked against the table, with what `actor`'s role may write."""
    return clean_fields(
        table,
        fields,
        creating=creating,
        may_write_manager_fields=actor.is_manager,
        may_write_server_fields=actor.is_system,
    )


def check_delete(session: Session, actor: Actor, record: StoredRecord) -> None:
    if record.table in SERVER_MADE:
        raise Rejected("read_only", f"{record.table.capitalize()} are resolved, not deleted.")
    if record.table == "accounts" and not actor.is_manager:
        owner = record.values.get("owner_id")
        if owner != actor.user_id or record.id in _claimed(session):
            raise Rejected("forbidden", "Only the account's owner or a manager may delete it.")


def check_authorship(actor: Actor, record: StoredRecord) -> None:
    """A visit or a note is changed or deleted by its author, a manager of its team (who
    sees it: it is in their team's scope) or an admin; it keeps its author."""
    author = record.values.get(_AUTHOR.get(record.table, ""))
    if record.table in _AUTHOR and author != actor.user_id and not actor.is_manager:
        raise Rejected(
            "forbidden", f"Only its author or a manager may change this {record.table[:-1]}."
        )


_AUTHOR = {"visits": "user_id", "notes": "author_id", "attachments": "author_id"}


async def complete_new(
    session: Session, actor: Actor, table: str, values: dict[str, Any], at_ms: int = 0
) -> dict[str, Any]:
    """Every field of a new record: the written ones, defaults, and server-kept ones.
    `at_ms`: the write's effective clock, when what it records happened (a task done, a
    deal's stage set) as far as the server believes the phone."""
    full = {**defaults(table), **values}
    if table == "accounts":
        full["owner_id"] = full["owner_id"] or actor.user_id
        if values.get("team_id") is None:
            full["team_id"] = await session.team_of(full["owner_id"]) or actor.team_id
        if "created_by" not in values:  # the server's own jobs (an import) may name one
            full["created_by"] = actor.user_id or None
        full["phone_e164"] = e164(full["phone"], full["country"])
    elif table == "visits":
        full["user_id"] = actor.user_id
        full.update(await _verify(session, full))
    elif table == "notes":
        full["author_id"] = actor.user_id
    elif table == "attachments":
        full["author_id"] = actor.user_id or None
        full["uploaded"] = await blob_held(full["sha256"])
    elif table == "tasks":
        full["author_id"] = actor.user_id or None  # the server's own (a built-in rule): none
        full["assignee_id"] = full["assignee_id"] or actor.user_id
        full["done_at"] = clock_time(at_ms) if full["done"] else None
    elif table == "deals":
        full["owner_id"] = full["owner_id"] or actor.user_id
        full["stage_changed_at"] = clock_time(at_ms)
    return full


def clock_time(at_ms: int) -> datetime:
    """A write's effective clock as a time (the server's time for a write without one)."""
    return datetime.fromtimestamp((at_ms or now_ms()) / 1000, UTC)


async def derive(
    session: Session,
    actor: Actor,
    record: StoredRecord,
    changed: dict[str, Any],
    values: dict[str, Any],
    at_ms: int = 0,
) -> dict[str, Any]:
    """Server-kept fields that follow from a change (`at_ms`: the write's effective clock)."""
    derived: dict[str, Any] = {}
    if record.table == "tasks" and "done" in changed:
        # When `done` last became true; a task undone is not done at any time.
        derived["done_at"] = clock_time(at_ms) if values["done"] else None
    if record.table == "deals" and "stage" in changed:
        derived["stage_changed_at"] = clock_time(at_ms)
    if record.table == "accounts" and "owner_id" in changed and "team_id" not in changed:
        owner_team = await session.team_of(values["owner_id"]) if values["owner_id"] else None
        # A reassignment made before a later move of the account to another team (rule 11
        # lets it land) does not take the account back: the move stands, with that owner.
        moved = record.stamps.get("team_id")
        if owner_team and not (moved is not None and at_ms and moved.ms > at_ms):
            derived["team_id"] = owner_team
    checked = {"lat", "lng", "accuracy_m", "account_id"}
    if session.source == "merge":
        # A visit a merge moves was made at the merged account's place: it keeps the
        # verification it got there (and gets it back on undo).
        checked.discard("account_id")
    if record.table == "visits" and checked & set(changed):
        derived.update(await _verify(session, values))
    if record.table == "accounts" and {"lat", "lng"} & set(changed):
        if "geo_precision" not in changed:
            # A position set by a person is not the geocoder's: its precision no longer applies.
            derived["geo_precision"] = None
    if record.table == "accounts" and {"phone", "country"} & set(changed):
        derived["phone_e164"] = e164(values["phone"], values["country"])
    return derived


async def _check_references(
    session: Session,
    actor: Actor,
    table: str,
    values: dict[str, Any],
    record: StoredRecord | None,
    at_ms: int = 0,
) -> None:
    account_id = values.get("account_id")
    if account_id is not None:
        account = await session.load("accounts", account_id)
        if is_erased(account):
            raise Rejected("erased", ERASED_DETAIL)
        if account is not None and account.deleted:
            # Rule 13: what names a merged-away account hangs off its survivor.
            survivor = await merged_into(session, account)
            if survivor is not None:
                values["account_id"] = account_id = survivor.id
                account = survivor
        if account is None or account.deleted:
            raise Rejected("not_found", "The account this belongs to does not exist.")
        if not actor.sees(account.scope) and not await moved_since(session, actor, account, at_ms):
            raise Rejected("not_found", "The account this belongs to does not exist.")
    if values.get("visit_id") is not None:
        visit = await session.load("visits", values["visit_id"])
        if is_erased(visit):
            raise Rejected("erased", ERASED_DETAIL)
        if visit is None or not (
            actor.sees(visit.scope) or await _moved_with_account(session, actor, visit, at_ms)
        ):
            raise Rejected("not_found", f"{table}.visit_id names no visit you can see.")
    for name in ("owner_id", "assignee_id"):
        user_id = values.get(name)
        if user_id is None:
            continue
        team = await session.team_of(user_id)
        if team is None:
            raise Rejected("not_found", f"{table}.{name} names no user.")
        if team != actor.team_id and not _writes_across_teams(actor):
            raise Rejected("forbidden", f"{table}.{name} must be someone in your team.")
    if table == "accounts" and record is not None and "team_id" in values:
        if values["team_id"] is None:
            # An account in no team would be seen by admins only.
            raise Rejected("invalid", "accounts.team_id cannot be null; name the team.")
    if table == "accounts" and values.get("team_id") is not None:
        rows = await db.fetch("SELECT id FROM teams WHERE id = {}", values["team_id"])
        if not rows:
            raise Rejected("not_found", "accounts.team_id names no team.")
        if values["team_id"] != actor.team_id and not _writes_across_teams(actor):
            raise Rejected("forbidden", "Only an admin may move an account to another team.")
    if table == "accounts" and "owner_id" in values and not actor.is_manager:
        _check_claim(actor, record, values["owner_id"])
        if record is not None and values["owner_id"] and not record.values.get("owner_id"):
            _claimed(session).add(record.id)


def _writes_across_teams(actor: Actor) -> bool:
    """Only an admin (or the server's own jobs) writes into another team than their own."""
    return actor.is_admin or actor.is_system


def _check_claim(actor: Actor, record: StoredRecord | None, owner_id: str | None) -> None:
    """A rep owns only what they create or claim: an account with no owner."""
    if owner_id is not None and owner_id != actor.user_id:
        raise Rejected("forbidden", "Only a manager may give an account to someone else.")
    current = record.values.get("owner_id") if record is not None else None
    if record is not None and current not in (None, actor.user_id):
        raise Rejected("forbidden", "This account has an owner; ask a manager to reassign it.")


# Per write session: the accounts a rep claimed in it. Their owner may not delete them in
# the same transaction: an account is deleted by its owner only when it was theirs before
# the request began (SPEC section 2).
_CLAIMS: weakref.WeakKeyDictionary[Session, set[str]] = weakref.WeakKeyDictionary()


def _claimed(session: Session) -> set[str]:
    return _CLAIMS.setdefault(session, set())


async def _verify(session: Session, visit: dict[str, Any]) -> dict[str, Any]:
    """Check a visit's position against its account's: done on the server, so a check-in
    made offline is still checked when it arrives."""
    account = await session.load("accounts", visit["account_id"])
    lat, lng, accuracy = visit.get("lat"), visit.get("lng"), visit.get("accuracy_m")
    at = (account.values["lat"], account.values["lng"]) if account is not None else (None, None)
    if at[0] is None or at[1] is None or lat is None or lng is None:
        return {"distance_m": None, "verification": "unverified"}
    distance = geodesic((lat, lng), at).meters
    if accuracy is None or accuracy > MAX_ACCURACY_M:
        verification = "low_accuracy"
    elif distance - accuracy <= CHECKIN_RADIUS_M:
        verification = "verified"
    else:
        verification = "out_of_range"
    return {"distance_m": round(distance, 1), "verification": verification}


async def blob_held(sha256: str) -> bool:
    """Whether the server holds the bytes with this hash (server/attachments/ keeps the
    table of what it holds, written in the same write transactions)."""
    rows = await db.fetch("SELECT sha256 FROM attachment_blobs WHERE sha256 = {}", sha256)
    return bool(rows)


async def scope_of(session: Session, table: str, values: dict[str, Any], current: str = "") -> str:
    """Which scope a record with these values is in: an account's team; what hangs off an
    account, its account's; a task on no account, its assignee's."""
    if table in SERVER_MADE:
        return current  # a conflict stays with its record; a rejection with its writer
    if table == "accounts":
        return team_scope(values["team_id"])
    account_id = values.get("account_id")
    if account_id is not None:
        account = await session.load("accounts", str(account_id))
        if account is not None:
            return account.scope
    person = values.get("assignee_id") or values.get("author_id")
    if table == "tasks" and person is not None:
        return user_scope(str(person))
    raise Rejected("not_found", "The account this belongs to does not exist.")


async def check_access(
    session: Session, actor: Actor, record: StoredRecord, op: str, at_ms: int = 0
) -> None:
    if is_erased(record):  # SPEC section 12: refused, and kept nowhere (keep_rejected)
        raise Rejected("erased", ERASED_DETAIL)
    if not actor.sees(record.scope) and not await _moved_with_account(
        session, actor, record, at_ms
    ):
        raise Rejected("not_found", f"There is no {record.table[:-1]} with this id.")
    check_authorship(actor, record)
    if op == "delete":
        check_delete(session, actor, record)


async def _moved_with_account(
    session: Session, actor: Actor, record: StoredRecord, at_ms: int
) -> bool:
    """Rule 11 for `record` (an account, or what hangs off one) out of `actor`'s sight."""
    account = record if record.table == "accounts" else None
    account_id = record.values.get("account_id")
    if account is None and account_id is not None:
        account = await session.load("accounts", str(account_id))
    return account is not None and await moved_since(session, actor, account, at_ms)


# Rule 11: how long after a move a write made before it still lands.
MOVE_GRACE_MS = 30 * 24 * 3600 * 1000


async def moved_since(session: Session, actor: Actor, account: StoredRecord, at_ms: int) -> bool:
    """Rule 11: whether `account` was in a scope `actor` saw at `at_ms` (a write's effective
    clock), and it or the writer moved to another team since, the first such move within
    MOVE_GRACE_MS of now: such a write still lands. Only asked for a write out of sight."""
    if not at_ms or account.table != "accounts" or actor.scopes is None:
        return False
    # Where each was at `at_ms`: where its first move after it took it from, else where
    # it is now.
    moves = await db.fetch(
        "SELECT from_scope, moved_at_ms FROM scope_moves WHERE record_id = {}"
        " AND moved_at_ms > {} ORDER BY moved_at_ms, seq LIMIT 1",
        account.id,
        at_ms,
    )
    left = await db.fetch(
        "SELECT from_team, moved_at_ms FROM team_moves WHERE user_id = {}"
        " AND moved_at_ms > {} ORDER BY moved_at_ms LIMIT 1",
        actor.user_id,
        at_ms,
    )
    if not moves and not left:
        return False
    scope_then = str(moves[0]["from_scope"]) if moves else account.scope
    team_then = str(left[0]["from_team"]) if left else actor.team_id
    first_move = min(int(row[0]["moved_at_ms"]) for row in (moves, left) if row)
    return scope_then == team_scope(team_then) and first_move >= session.time_ms() - MOVE_GRACE_MS


async def written(
    session: Session,
    actor: Actor,
    table: str,
    record_id: str,
    scope: str,
    before: StoredRecord | None = None,
) -> None:
    """After a write is stored (`before`: the record as it was, None for a create): one
    that landed outside the writer's scope (rule 11, or a task handed to someone else) goes
    from the writer's devices, as any record that leaves their scope does. The evict is in
    the writer's own scope: their teammates' devices, which may see the record, are not
    told to drop it. A visit's account keeps its latest visit (`last_visit_at`), and a new
    visit marks done the visits its author planned there (SPEC section 14). The built-in
    rules (server/core/automation.py) look at every live write."""
    after = await session.load(table, record_id)
    live = after is not None and not after.deleted
    if live and not actor.sees(scope) and not actor.is_system:
        await session.evict_from(table, record_id, user_scope(actor.user_id))
    if table == "visits":
        await _keep_last_visit(session, before, after)
        if before is None and after is not None and live:
            await _done_planned_visits(session, after)
    if live:
        await automation.after_write(RULES, session, table, record_id, before)


# A visit fulfils its author's planned visits to the account due up to a day after it began:
# a rep who comes the afternoon before the planned morning has made that visit.
PLANNED_VISIT_AHEAD = timedelta(days=1)


async def _done_planned_visits(session: Session, visit: StoredRecord) -> None:
    """The open `visit` tasks of the visit's author at its account, due by a day after the
    visit began, become done, as the server's write (they reach devices as any change)."""
    started = normalize(visit.values["started_at"])
    rows = await db.fetch(
        "SELECT id FROM tasks WHERE account_id = {} AND kind = {} AND done = {}"
        " AND deleted = {} AND assignee_id = {} AND due_at <= {}",
        visit.values["account_id"],
        "visit",
        False,
        False,
        visit.values["user_id"],
        started + PLANNED_VISIT_AHEAD,
    )
    stamp = Stamp(now_ms(), 0, SERVER_CLIENT_ID, None, 0)
    for row in rows:
        task = await session.load("tasks", str(row["id"]))
        if task is None or task.deleted or task.values.get("done"):
            continue
        changed = {"done": True, "done_at": started}
        await session.update(task, changed, dict.fromkeys(changed, stamp), task.scope)


async def _keep_last_visit(
    session: Session, before: StoredRecord | None, after: StoredRecord | None
) -> None:
    """accounts.last_visit_at is the latest `started_at` of the account's live visits. A
    new visit only moves it forward (no query); a visit moved back in time, to another
    account, or deleted, that was the latest, has the table asked again. The account's
    change reaches devices like any other, written by the server."""
    was = before if before is not None and not before.deleted else None
    now = after if after is not None and not after.deleted else None
    accounts = {str(v.values["account_id"]) for v in (was, now) if v is not None}
    if session.later_visits is not None:
        session.later_visits |= accounts
        return
    for account_id in sorted(accounts):
        account = await session.load("accounts", account_id)
        if account is None or account.deleted:
            continue
        current = account.values.get("last_visit_at")
        latest = current
        started = now.values["started_at"] if now is not None else None
        here = now is not None and now.values["account_id"] == account_id
        if here and (current is None or started > current):
            latest = started
        elif was is not None and was.values["account_id"] == account_id:
            if was.values["started_at"] == current:
                latest = await _latest_visit(account_id)
        if latest != current:
            stamp = Stamp(now_ms(), 0, SERVER_CLIENT_ID, None, 0)
            await session.update(
                account, {"last_visit_at": latest}, {"last_visit_at": stamp}, account.scope
            )


async def settle_last_visits(session: Session) -> None:
    """The last visit of each account gathered in `session.later_visits` (a merge moved
    their visits), read once each; then back to keeping it after each write."""
    accounts, session.later_visits = session.later_visits or set(), None
    for account_id in sorted(accounts):
        account = await session.load("accounts", account_id)
        if account is None or account.deleted:
            continue
        latest = await _latest_visit(account_id)
        if latest != account.values.get("last_visit_at"):
            stamp = Stamp(now_ms(), 0, SERVER_CLIENT_ID, None, 0)
            await session.update(
                account, {"last_visit_at": latest}, {"last_visit_at": stamp}, account.scope
            )


async def _latest_visit(account_id: str) -> datetime | None:
    rows = await db.fetch(
        "SELECT started_at FROM visits WHERE account_id = {} AND deleted = {}"
        " ORDER BY started_at DESC LIMIT 1",
        account_id,
        False,
    )
    return normalize(rows[0]["started_at"]) if rows else None


async def keep_rejected(
    session: Session, actor: Actor, client_id: str, mutation: Mutation, rejected: Rejected
) -> None:
    """Rule 12: keep a phone's refused write whole, with a sentence that names the real
    cause, where its writer and the managers of their team see it."""
    if mutation.table == "rejections" or rejected.error == "invalid_hlc":
        return  # refusing to mark a rejection resolved is not itself kept; rule 12
    if rejected.error == "erased":
        return  # a write to an erased record keeps its values nowhere (SPEC section 12)
    account = await _account_of(session, mutation)
    detail = rejected.detail
    if rejected.error == "not_found" and account is not None and not actor.sees(account.scope):
        detail = await _move_detail(actor, account) or detail
    elif rejected.error == "not_found" and account is not None and account.deleted:
        deleted = account.stamps.get(DELETED_STAMP)
        on = (
            f" on {datetime.fromtimestamp(deleted.ms / 1000, UTC):%Y-%m-%d}"
            if deleted is not None
            else ""
        )
        detail = (
            f'The account "{str(account.values.get("name"))[:100]}" was deleted{on}'
            ", before this write reached the server; fix it and send it again on another"
            " account."
        )
    values = {
        "table": str(mutation.table)[:20],
        "record_id": str(mutation.id)[:60],
        "op": str(mutation.op)[:10],
        "fields": mutation.fields,
        "error": rejected.error[:40],
        "detail": detail,
        "user_id": actor.user_id,
        "client_id": client_id[:100],
        "mid": min(mutation.mid, 2**63 - 1),
        "account_id": account.id if account is not None else None,
        "resolved": False,
    }
    stamp = Stamp(now_ms(), 0, SERVER_CLIENT_ID, None, 0)
    scope = review_scope(actor.team_id, actor.user_id)
    await session.create("rejections", str(uuid.uuid4()), values, stamp, scope)


async def _move_detail(actor: Actor, account: StoredRecord) -> str | None:
    """Why a write to an account out of the writer's sight was refused, when a move (the
    account's or the writer's) is the cause: a sentence that names it."""
    name = str(account.values.get("name"))[:100]
    moved = await db.fetch(
        "SELECT moved_at_ms FROM scope_moves WHERE record_id = {}"
        " ORDER BY moved_at_ms DESC, seq DESC LIMIT 1",
        account.id,
    )
    if moved:
        when = datetime.fromtimestamp(int(moved[0]["moved_at_ms"]) / 1000, UTC)
        return (
            f'The account "{name}" was moved to another team on {when:%Y-%m-%d}, before this'
            " write reached the server; a manager of your team can apply it again, to this"
            " account or another."
        )
    left = await db.fetch(
        "SELECT moved_at_ms FROM team_moves WHERE user_id = {} ORDER BY moved_at_ms DESC LIMIT 1",
        actor.user_id,
    )
    if left:
        when = datetime.fromtimestamp(int(left[0]["moved_at_ms"]) / 1000, UTC)
        return (
            f'You moved to another team on {when:%Y-%m-%d}, and the account "{name}" is not'
            " in it: this write was made after the move, or reached the server more than 30"
            " days after it. A manager of your team can apply it again, to another account."
        )
    return None


# Merges of merges followed at most this deep (a cycle cannot be made: a survivor is live
# when merged into, and a merged record is a tombstone).
MAX_MERGE_CHAIN = 32


async def merged_into(session: Session, record: StoredRecord) -> StoredRecord | None:
    """Rule 13: the live record a merged-away `record` now stands for (its survivor, or
    the survivor's survivor...); None if it was deleted, not merged, or its survivor is."""
    current = record
    for _ in range(MAX_MERGE_CHAIN):
        if not current.deleted:
            return current if current is not record else None
        rows = await db.fetch(
            "SELECT survivor_id FROM merged_records WHERE record_id = {}", current.id
        )
        if not rows:
            return None
        found = await session.load(current.table, str(rows[0]["survivor_id"]))
        if found is None:
            return None
        current = found
    return None


async def _account_of(session: Session, mutation: Mutation) -> StoredRecord | None:
    """The account a write is about, if it names one that exists."""
    candidates: list[Any] = []
    if mutation.table == "accounts":
        candidates.append(mutation.id)
    if isinstance(mutation.fields, dict):
        candidates.append(mutation.fields.get("account_id"))
    if mutation.table in TABLES and mutation.table != "accounts":
        try:
            record = await session.load(mutation.table, str(uuid.UUID(mutation.id)))
        except ValueError:
            record = None
        if record is not None:
            candidates.append(record.values.get("account_id"))
    for candidate in candidates:
        if not isinstance(candidate, str):
            continue
        try:
            account = await session.load("accounts", str(uuid.UUID(candidate)))
        except ValueError:
            continue
        if account is not None:
            return account
    return None


class CrmRules:
    """The rules above as the sync engine calls them (`sync.engine.RecordRules`). The
    session they get is always this server's `Session`."""

    tables = TABLES

    def scopes(self, actor: Actor) -> tuple[str, ...] | None:
        return actor.scopes

    async def check_access(
        self, session: Session, actor: Actor, record: StoredRecord, op: str, at_ms: int
    ) -> None:
        await check_access(session, actor, record, op, at_ms)

    async def prepare_create(
        self, session: Session, actor: Actor, table: str, fields: dict[str, Any], at_ms: int
    ) -> dict[str, Any]:
        return await prepare_create(session, actor, table, fields, at_ms)

    async def prepare_update(
        self,
        session: Session,
        actor: Actor,
        record: StoredRecord,
        fields: dict[str, Any],
        at_ms: int,
    ) -> dict[str, Any]:
        return await prepare_update(session, actor, record, fields, at_ms)

    async def complete_new(
        self, session: Session, actor: Actor, table: str, values: dict[str, Any], at_ms: int
    ) -> dict[str, Any]:
        return await complete_new(session, actor, table, values, at_ms)

    async def derive(
        self,
        session: Session,
        actor: Actor,
        record: StoredRecord,
        changed: dict[str, Any],
        values: dict[str, Any],
        at_ms: int,
    ) -> dict[str, Any]:
        return await derive(session, actor, record, changed, values, at_ms)

    async def scope_of(
        self, session: Session, table: str, values: dict[str, Any], current: str = ""
    ) -> str:
        return await scope_of(session, table, values, current)

    async def written(
        self,
        session: Session,
        actor: Actor,
        table: str,
        record_id: str,
        scope: str,
        before: StoredRecord | None,
    ) -> None:
        await written(session, actor, table, record_id, scope, before)

    async def settle(self, session: Session) -> None:
        await automation.settle(self, session)

    async def keep_rejected(
        self,
        session: Session,
        actor: Actor,
        client_id: str,
        mutation: Mutation,
        rejected: Rejected,
    ) -> None:
        await keep_rejected(session, actor, client_id, mutation, rejected)

    async def admit(
        self, session: Session, actor: Actor, mutations: Sequence[Mutation], now_ms: int
    ) -> None:
        await limits.admit(session, actor, mutations, now_ms)

    async def merged_into(self, session: Session, record: StoredRecord) -> StoredRecord | None:
        return await merged_into(session, record)


RULES = CrmRules()
