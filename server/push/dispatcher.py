"""The reminder dispatcher (SPEC 6): every FIELDCRM_DISPATCH_INTERVAL_S it finds the tasks
whose reminder is due and sends one Web Push to each subscription of the task's assignee.

A round has two stages, so that each reminder goes out once however many processes run on
one PostgreSQL:

1. **Schedule** (`schedule_due`), in a write session of the sync store, which holds the
   single writer's lock (a transaction-level advisory lock on PostgreSQL), so one process at
   a time: pick due tasks, queue one `push_deliveries` row per (task, subscription) and set
   the task's `reminded_at` through the sync write path, so devices pull it like any change.
   The queue and `reminded_at` commit together: a task is queued once per `remind_at`.
2. **Send** (`send_due`): claim due rows with a lease (`FOR UPDATE SKIP LOCKED` on
   PostgreSQL, under the writer's lock on SQLite), check the task again (done, deleted or
   moved to another time since: not sent), send, then delete the row (delivered, refused for
   good, or the subscription is gone, which is deleted too) or put it back with a backoff.

A process that dies between sending and deleting leaves its rows claimed; they are sent
again once the lease runs out, so a crash can repeat a reminder but never lose one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from server import db
from server.core.actor import SYSTEM
from server.core.rows import record_from_row
from server.core.writer import Edit, Source, writing
from server.errors import loggable
from server.push import services
from server.push.endpoints import PushEndpointRefused, check_endpoint, parse_allowed_hosts
from server.push.sender import PushOutcome, backoff_s, send_push
from server.push.vapid import VapidKey, vapid_subject_problem
from server.settings import Settings
from sync.engine import StoredRecord

log = logging.getLogger("fieldcrm.push")

SCHEDULE_BATCH = 200  # tasks per write transaction: keeps the writer's lock short for syncs
CLAIM_BATCH = 100  # deliveries claimed at a time
SEND_CONCURRENCY = 16  # messages in flight at once
LEASE_S = 300.0  # a claim outlives the slowest batch: CLAIM_BATCH / SEND_CONCURRENCY * timeout
SEND_TIMEOUT_S = 10.0
MESSAGE_TTL_S = 12 * 60 * 60  # a phone offline longer than this gets no stale reminder
MAX_ATTEMPTS = 8  # 5 s, 10 s, ... about 10 minutes of retries, then the reminder is dropped
MAX_RETRY_AFTER_S = 6 * 60 * 60
IN_CHUNK = 500

_DUE_TASKS = (
    # The same terms as the partial index tasks_reminder_due (push migrations).
    "SELECT * FROM tasks WHERE done = false AND deleted = false AND remind_at IS NOT NULL"
    " AND (reminded_at IS NULL OR reminded_at < remind_at) AND remind_at <= {}"
    " ORDER BY remind_at LIMIT {}"
)
_CLAIM = (
    "UPDATE push_deliveries SET claimed_until = {} WHERE id IN ("
    "SELECT id FROM push_deliveries WHERE next_attempt_at <= {}"
    " AND (claimed_until IS NULL OR claimed_until < {})"
    " ORDER BY next_attempt_at LIMIT {}%s)"
    " RETURNING id, task_id, subscription_id, payload, attempts, remind_at"
)


@dataclass
class RoundReport:
    """What one round did, for the log and for tests."""

    scheduled: int = 0  # deliveries queued
    reminded: int = 0  # tasks whose reminded_at was set
    delivered: int = 0
    retrying: int = 0
    gone: int = 0  # subscriptions deleted (404/410, unusable, or no longer allowed)
    skipped: int = 0  # task done, deleted, moved, or subscription gone before sending
    failed: int = 0  # refused for good, or out of attempts
    claimed: int = 0  # deliveries taken from the queue
    details: list[str] = field(default_factory=list)

    def add(self, other: RoundReport) -> None:
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.details = (self.details + other.details)[-20:]

    @property
    def busy(self) -> bool:
        return any(getattr(self, name) for name in _COUNTS)


_COUNTS = tuple(f.name for f in fields(RoundReport) if f.name != "details")


@dataclass(frozen=True)
class _Claimed:
    id: str
    task_id: str
    subscription_id: str
    payload: dict[str, Any]
    attempts: int
    remind_at: datetime | None


async def run_dispatcher(settings: Settings) -> None:
    """Run rounds forever, FIELDCRM_DISPATCH_INTERVAL_S apart; a failed round is logged and
    the next one runs as usual (the database may be back by then)."""
    problem = vapid_subject_problem(settings.push_subject)
    if problem:
        log.warning("%s", problem)
    while True:
        try:
            report = await dispatch_round(settings)
            if report.busy:
                log.info(
                    "reminders: %d queued for %d tasks, %d delivered, %d retrying, %d gone,"
                    " %d skipped, %d failed",
                    report.scheduled, report.reminded, report.delivered, report.retrying,
                    report.gone, report.skipped, report.failed,
                )  # fmt: skip
        except Exception:
            log.exception(
                "reminder round failed; trying again in %s s", settings.dispatch_interval_s
            )
        await asyncio.sleep(settings.dispatch_interval_s)


async def dispatch_round(settings: Settings, *, now: datetime | None = None) -> RoundReport:
    """Schedule what is due and send what is queued, batch by batch, until both are empty.

    `now` fixes the round's clock (tests use it to step past a backoff); by default each
    step reads the wall clock.
    """
    key = await services.vapid_key()
    allowed = parse_allowed_hosts(settings.push_allowed_hosts)
    report = RoundReport()
    while True:
        scheduled = await schedule_due(now or _now())
        report.add(scheduled)
        report.add(await send_due(settings, key, allowed, now=now))
        if scheduled.reminded < SCHEDULE_BATCH:
            return report


async def schedule_due(now: datetime, *, limit: int = SCHEDULE_BATCH) -> RoundReport:
    """Stage 1: queue the reminders of up to `limit` due tasks and mark them reminded."""
    report = RoundReport()
    async with writing(Source.REMINDER) as writer:
        rows = await db.fetch(_DUE_TASKS, now, limit)
        if not rows:
            return report
        tasks = [record_from_row("tasks", row) for row in rows]
        subscriptions = await _subscriptions_of({a for a in map(_assignee, tasks) if a})
        names = await _account_names({str(a) for t in tasks if (a := t.values["account_id"])})
        ids = [t.id for t in tasks]
        for chunk in _chunks(ids, IN_CHUNK):
            # A reminder still waiting for an earlier remind_at is replaced by this one.
            await db.fetch(
                f"DELETE FROM push_deliveries WHERE task_id IN ({_marks(chunk)})", *chunk
            )
        queued: list[list[Any]] = []
        for task in tasks:
            payload = json.dumps(reminder_payload(task, names), separators=(",", ":"))
            for subscription_id in subscriptions.get(_assignee(task) or "", []):
                queued.append(
                    [str(uuid.uuid4()), task.id, subscription_id, payload, 0, now, None,
                     task.values["remind_at"]]
                )  # fmt: skip
        for chunk in _chunks(queued, 100):
            marks = ", ".join("({}, {}, {}, {}, {}, {}, {}, {})" for _ in chunk)
            await db.fetch(
                "INSERT INTO push_deliveries (id, task_id, subscription_id, payload, attempts,"
                f" next_attempt_at, claimed_until, remind_at) VALUES {marks}",
                *[value for row in chunk for value in row],
            )
        # Through the one writer: reminded_at gets a seq and reaches the assignee's
        # devices like any other change.
        reminded = {"reminded_at": now.isoformat()}
        await writer.apply_all(SYSTEM, [Edit("tasks", task.id, reminded) for task in tasks])
    report.reminded = len(tasks)
    report.scheduled = len(queued)
    return report


def reminder_payload(task: StoredRecord, account_names: dict[str, str]) -> dict[str, Any]:
    """The message a reminder carries (SPEC 6); the service worker shows it."""
    account_id = task.values.get("account_id")
    due_at = task.values.get("due_at")
    return {
        "type": "task_reminder",
        "task_id": task.id,
        "title": task.values.get("title") or "",
        "account_id": account_id,
        "account_name": account_names.get(account_id) if account_id else None,
        "due_at": _iso(due_at) if isinstance(due_at, datetime) else None,
        "url": f"/#/task/{task.id}/edit",
    }


async def send_due(
    settings: Settings,
    key: VapidKey,
    allowed: tuple[str, ...],
    *,
    now: datetime | None = None,
) -> RoundReport:
    """Stage 2: claim queued deliveries whose time has come and send them, batch by batch."""
    report = RoundReport()
    while True:
        claimed = await _claim(now or _now(), CLAIM_BATCH)
        if not claimed:
            return report
        report.add(await _deliver(settings, key, allowed, claimed, now))


async def _claim(now: datetime, limit: int) -> list[_Claimed]:
    lease = now + timedelta(seconds=LEASE_S)
    if db.is_postgres():
        # One statement, autocommitted: the claim is visible to the other processes at once,
        # and SKIP LOCKED lets them claim other rows meanwhile instead of waiting.
        rows = await db.fetch(_CLAIM % " FOR UPDATE SKIP LOCKED", lease, now, now, limit)
    else:
        async with db.write_transaction():
            rows = await db.fetch(_CLAIM % "", lease, now, now, limit)
    return [
        _Claimed(
            id=str(row["id"]),
            task_id=str(row["task_id"]),
            subscription_id=str(row["subscription_id"]),
            payload=json.loads(row["payload"]),
            attempts=int(row["attempts"]),
            remind_at=_as_datetime(row["remind_at"]),
        )
        for row in rows
    ]


@dataclass
class _Outcomes:
    done: list[str] = field(default_factory=list)  # delivery rows to delete
    gone: list[str] = field(default_factory=list)  # subscriptions to delete
    retry: list[tuple[str, int, datetime, str]] = field(default_factory=list)


async def _deliver(
    settings: Settings,
    key: VapidKey,
    allowed: tuple[str, ...],
    claimed: Sequence[_Claimed],
    now: datetime | None,
) -> RoundReport:
    report = RoundReport(claimed=len(claimed))
    outcomes = _Outcomes()
    tasks = await _rows_by_id(
        "SELECT id, done, deleted, remind_at, assignee_id, author_id FROM tasks",
        [c.task_id for c in claimed],
    )
    subscriptions = await _rows_by_id(
        "SELECT id, user_id, endpoint, p256dh, auth FROM push_subscriptions",
        [c.subscription_id for c in claimed],
    )
    to_send: list[tuple[_Claimed, dict[str, Any]]] = []
    for delivery in claimed:
        subscription = subscriptions.get(delivery.subscription_id)
        task = tasks.get(delivery.task_id)
        if subscription is None or not _still_due(delivery, task, subscription):
            outcomes.done.append(delivery.id)
            report.skipped += 1
            continue
        try:
            check_endpoint(subscription["endpoint"], allowed)
        except PushEndpointRefused as exc:
            # FIELDCRM_PUSH_ALLOWED_HOSTS changed since it was stored: never send there.
            log.warning(
                "dropping a subscription the server no longer sends to: %s", loggable(exc.detail)
            )
            outcomes.gone.append(delivery.subscription_id)
            report.gone += 1
            continue
        to_send.append((delivery, subscription))

    limit = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send(delivery: _Claimed, subscription: dict[str, Any]) -> PushOutcome:
        info = {
            "endpoint": subscription["endpoint"],
            "keys": {"p256dh": subscription["p256dh"], "auth": subscription["auth"]},
        }
        async with limit:
            try:
                return await send_push(
                    info,
                    delivery.payload,
                    key,
                    subject=settings.push_subject,
                    ttl=MESSAGE_TTL_S,
                    timeout=SEND_TIMEOUT_S,
                )
            except Exception as exc:  # a bug or an odd library error: retry, and say so
                log.exception("sending a reminder failed")
                return PushOutcome(None, gone=False, retry=True, detail=f"{type(exc).__name__}")

    results = await asyncio.gather(*(send(d, s) for d, s in to_send))
    after = now or _now()
    gone_subscriptions: set[str] = set()
    for (delivery, _), outcome in zip(to_send, results, strict=True):
        if outcome.delivered:
            outcomes.done.append(delivery.id)
            report.delivered += 1
        elif outcome.gone:
            outcomes.done.append(delivery.id)
            if delivery.subscription_id not in gone_subscriptions:
                gone_subscriptions.add(delivery.subscription_id)
                outcomes.gone.append(delivery.subscription_id)
                report.gone += 1
        elif outcome.retry and delivery.attempts + 1 < MAX_ATTEMPTS:
            attempt = delivery.attempts + 1
            wait = max(backoff_s(attempt, jitter=0.2), outcome.retry_after_s or 0.0)
            when = after + timedelta(seconds=min(wait, MAX_RETRY_AFTER_S))
            outcomes.retry.append((delivery.id, attempt, when, outcome.detail[:500]))
            report.retrying += 1
        else:
            outcomes.done.append(delivery.id)
            report.failed += 1
            report.details.append(outcome.detail)
            log.warning(
                "reminder for task %s not delivered after %d attempt(s): %s",
                delivery.task_id, delivery.attempts + 1, loggable(outcome.detail),
            )  # fmt: skip
    await _record(outcomes)
    return report


def _still_due(
    delivery: _Claimed, task: dict[str, Any] | None, subscription: dict[str, Any]
) -> bool:
    """Checked again just before sending: the rep may have finished or moved the task, or
    handed it to someone else, since the reminder was queued."""
    if task is None or _truthy(task["done"]) or _truthy(task["deleted"]):
        return False
    if _as_datetime(task["remind_at"]) != delivery.remind_at:
        return False
    assignee = task["assignee_id"] or task["author_id"]
    return assignee is not None and str(assignee) == str(subscription["user_id"])


async def _record(outcomes: _Outcomes) -> None:
    if not (outcomes.done or outcomes.gone or outcomes.retry):
        return
    async with services.push_transaction():
        for chunk in _chunks(outcomes.done, IN_CHUNK):
            await db.fetch(f"DELETE FROM push_deliveries WHERE id IN ({_marks(chunk)})", *chunk)
        for chunk in _chunks(outcomes.gone, IN_CHUNK):
            marks = _marks(chunk)
            await db.fetch(
                f"DELETE FROM push_deliveries WHERE subscription_id IN ({marks})", *chunk
            )
            await db.fetch(f"DELETE FROM push_subscriptions WHERE id IN ({marks})", *chunk)
        for delivery_id, attempts, when, detail in outcomes.retry:
            await db.fetch(
                "UPDATE push_deliveries SET attempts = {}, next_attempt_at = {},"
                " claimed_until = NULL, last_error = {} WHERE id = {}",
                attempts,
                when,
                detail,
                delivery_id,
            )


# -- small helpers -------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _assignee(task: StoredRecord) -> str | None:
    value = task.values.get("assignee_id") or task.values.get("author_id")
    return str(value) if value else None


async def _subscriptions_of(user_ids: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for chunk in _chunks(sorted(user_ids), IN_CHUNK):
        rows = await db.fetch(
            f"SELECT id, user_id FROM push_subscriptions WHERE user_id IN ({_marks(chunk)})",
            *chunk,
        )
        for row in rows:
            found.setdefault(str(row["user_id"]), []).append(str(row["id"]))
    return found


async def _account_names(account_ids: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for chunk in _chunks(sorted(account_ids), IN_CHUNK):
        rows = await db.fetch(
            f"SELECT id, name FROM accounts WHERE id IN ({_marks(chunk)})", *chunk
        )
        names.update({str(row["id"]): str(row["name"]) for row in rows})
    return names


async def _rows_by_id(select: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(ids)), IN_CHUNK):
        rows = await db.fetch(f"{select} WHERE id IN ({_marks(chunk)})", *chunk)
        found.update({str(row["id"]): row for row in rows})
    return found


def _as_datetime(value: Any) -> datetime | None:
    """A timestamp as an aware UTC datetime, from either engine (SQLite may hand back text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return _as_datetime(value).isoformat().replace("+00:00", "Z")  # type: ignore[union-attr]


def _truthy(value: Any) -> bool:
    return bool(value) and value not in ("0", "false", "f")


def _marks(items: Sequence[Any]) -> str:
    return ", ".join("{}" for _ in items)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
