"""The built-in rules (docs/automation.md): what the server writes by itself when people's
writes call for it, each switchable off by an admin.

- `won_deal_makes_customer`: a deal whose stage becomes `won` (created so, or changed to
  it) makes its account a `customer`, unless it is one already.
- `follow_up_task`: a visit whose outcome becomes `follow_up`, whose author has no open task
  on its account once the request that wrote it is applied, gets a task for its author on
  that account, due three working days (Monday to Friday) after the visit, at the same time
  of day, in the organisation's time zone (FIELDCRM_TIMEZONE).

Both write through the one writer's path (`sync.engine.apply_mutation`, as the server,
`SYSTEM`), in the transaction of the write that called for them, so their changes have a
seq, a history entry (source `system`) and reach every device that sees the records, like
any change. The deal rule acts at once; the follow-up rule when the request's writes are
all applied (`settle`), so a phone that sends a visit and its own follow-up task together
gets no second one. The follow-up task's id is derived from the visit's, so a visit never
gets two, even when its author deletes the first and edits the visit again.

The switches are rows of `org_settings` (no row: on), read once per write transaction.
"""

from __future__ import annotations

import uuid
import weakref
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from server import db
from server.core.actor import SERVER_CLIENT_ID, SYSTEM
from server.core.rows import normalize
from server.core.session import Session
from sync.engine import RecordRules, apply_mutation
from sync.protocol import Mutation, Rejected

WON_DEAL = "won_deal_makes_customer"
FOLLOW_UP = "follow_up_task"
RULE_NAMES = (WON_DEAL, FOLLOW_UP)
FOLLOW_UP_WORKING_DAYS = 3
_PREFIX = "rules."
# The follow-up task's id: uuid5 of the visit's id in this namespace.
_FOLLOW_UP_IDS = uuid.UUID("5d0c3f7e-2b8a-4c1e-9f57-6a3d2e8b1c04")
_bool = msgspec.json.Decoder(bool)

# The organisation's time zone (FIELDCRM_TIMEZONE), set by the app at start.
_zone = [ZoneInfo("UTC")]


def configure(timezone: str) -> None:
    _zone[0] = ZoneInfo(timezone)


# -- the switches --------------------------------------------------------------------------


async def rule_switches() -> dict[str, bool]:
    """Each built-in rule and whether it is on (no row: on)."""
    rows = await db.fetch(
        "SELECT key, value FROM org_settings WHERE key >= {} AND key < {}", _PREFIX, "rules/"
    )
    found = {str(r["key"])[len(_PREFIX) :]: r["value"] for r in rows}
    switches = {}
    for name in RULE_NAMES:
        try:
            switches[name] = _bool.decode(found[name]) if name in found else True
        except msgspec.DecodeError:
            switches[name] = True
    return switches


async def set_rule_switches(changes: dict[str, bool], user_id: str) -> dict[str, bool]:
    """Turn rules on or off (admins); answers every rule's switch."""
    now = datetime.now(UTC)
    for name, on in changes.items():
        await db.fetch(
            "INSERT INTO org_settings (key, value, updated_at, updated_by) VALUES ({}, {}, {}, {})"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            _PREFIX + name,
            "true" if on else "false",
            now,
            user_id or None,
        )
    return await rule_switches()


# Per write session: the switches as read in it, and the visits the follow-up rule looks at
# once the request's writes are applied.
_SWITCHES: weakref.WeakKeyDictionary[Session, dict[str, bool]] = weakref.WeakKeyDictionary()
_FOLLOW_UPS: weakref.WeakKeyDictionary[Session, list[str]] = weakref.WeakKeyDictionary()


async def _is_on(session: Session, name: str) -> bool:
    if session not in _SWITCHES:
        _SWITCHES[session] = await rule_switches()
    return _SWITCHES[session][name]


# -- the rules -----------------------------------------------------------------------------


async def after_write(
    rules: RecordRules,
    session: Session,
    table: str,
    record_id: str,
    before: Any,
) -> None:
    """Called for every stored write (server/core/rules.py's `written`); `before` is the
    record as it was (None for a create). The demo's loader writes a past week whose
    follow-up tasks and customers it makes itself: the rules leave it alone."""
    if table not in ("deals", "visits") or session.source == "demo":
        return
    after = await session.load(table, record_id)
    if after is None or after.deleted:
        return
    was = before.values if before is not None and not before.deleted else {}
    if table == "deals" and after.values.get("stage") == "won" and was.get("stage") != "won":
        if await _is_on(session, WON_DEAL):
            await _make_customer(rules, session, after.values.get("account_id"))
    if (
        table == "visits"
        and after.values.get("outcome") == "follow_up"
        and was.get("outcome") != "follow_up"
    ):
        _FOLLOW_UPS.setdefault(session, []).append(record_id)


async def settle(rules: RecordRules, session: Session) -> None:
    """Called once a request's writes are all applied: the follow-up tasks they call for."""
    pending = _FOLLOW_UPS.pop(session, [])
    if not pending or not await _is_on(session, FOLLOW_UP):
        return
    for visit_id in dict.fromkeys(pending):
        await _follow_up(rules, session, visit_id)


async def _system_write(
    rules: RecordRules, session: Session, table: str, record_id: str, fields: dict[str, Any]
) -> bool:
    """Write as the server, through the one writer's path; False if the write is refused
    (the record was deleted meanwhile, ...): a rule never refuses the write that called it."""
    record = await session.load(table, record_id)
    hlc = session.server_hlc(session.time_ms())
    mutation = Mutation(
        mid=0,
        table=table,
        id=record_id,
        op="upsert",
        fields=fields,
        base_seq=record.seq if record is not None else None,
        hlc=hlc,
    )
    try:
        await apply_mutation(session, rules, SYSTEM, SERVER_CLIENT_ID, mutation, hlc)
    except Rejected:
        return False
    return True


async def _make_customer(rules: RecordRules, session: Session, account_id: Any) -> None:
    if not isinstance(account_id, str):
        return
    account = await session.load("accounts", account_id)
    if account is None or account.deleted or account.values.get("status") == "customer":
        return
    await _system_write(rules, session, "accounts", account_id, {"status": "customer"})


def follow_up_id(visit_id: str) -> str:
    return str(uuid.uuid5(_FOLLOW_UP_IDS, visit_id))


def add_working_days(day: date, count: int) -> date:
    """The day `count` working days (Monday to Friday) after `day`."""
    while count > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def follow_up_due(started_at: datetime) -> datetime:
    """Three working days after the visit, at the same time of day, in the organisation's
    time zone (in UTC)."""
    local = normalize(started_at).astimezone(_zone[0])
    day = add_working_days(local.date(), FOLLOW_UP_WORKING_DAYS)
    return datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=_zone[0]).astimezone(
        UTC
    )


async def _follow_up(rules: RecordRules, session: Session, visit_id: str) -> None:
    visit = await session.load("visits", visit_id)
    if visit is None or visit.deleted or visit.values.get("outcome") != "follow_up":
        return
    author, account_id = visit.values.get("user_id"), visit.values.get("account_id")
    if not author or not account_id:
        return
    account = await session.load("accounts", str(account_id))
    if account is None or account.deleted:
        return
    open_tasks = await db.fetch(
        "SELECT id FROM tasks WHERE account_id = {} AND assignee_id = {} AND done = {}"
        " AND deleted = {} LIMIT 1",
        account_id,
        author,
        False,
        False,
    )
    if open_tasks:
        return
    task_id = follow_up_id(visit_id)
    if await session.load("tasks", task_id) is not None:
        return  # made once already (and perhaps deleted since by its assignee)
    name = str(account.values.get("name") or "")
    fields = {
        "title": f"Follow up: {name}"[:200],
        "account_id": str(account_id),
        "assignee_id": str(author),
        "due_at": follow_up_due(visit.values["started_at"]).isoformat(),
        "kind": "todo",
    }
    await _system_write(rules, session, "tasks", task_id, fields)
