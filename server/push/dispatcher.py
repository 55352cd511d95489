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
from server.core.actor import SYSTEM, Actor
from server.core.rows import record_from_row
from server.core.writer import Edit, Source, writing
from server.errors import loggable
from server.push import services
from server.push.addresses import RememberingResolver, Resolver, system_resolver
from server.push.endpoints import PushEndpointRefused, parse_allowed_hosts, parse_endpoint
from server.push.sender import SEND_THREADS, PushOutcome, backoff_s, send_push
from server.push.vapid import VapidKey, vapid_subject_problem
from server.settings import Settings
from sync.engine import StoredRecord

log = logging.getLogger("fieldcrm.push")

SCHEDULE_BATCH = 200  # tasks per write transaction: keeps the writer's lock short for syncs
CLAIM_BATCH = 100  # deliveries claimed at a time
SEND_CONCURRENCY = SEND_THREADS  # messages in flight at once, one per sender thread
PER_SERVICE_CONCURRENCY = 8  # of those, to one push service: a slow one leaves the others room
SEND_TIMEOUT_S = 10.0  # to connect, and for each read
SEND_DEADLINE_S = 2 * SEND_TIMEOUT_S  # a whole send, lookup included
# A claim outlives the slowest batch, one push service answering each send just within the
# deadline: CLAIM_BATCH / PER_SERVICE_CONCURRENCY * SEND_DEADLINE_S = 250 s.
LEASE_S = 300.0
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
    withheld: int = 0  # the assignee is inactive or no longer sees the task
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
                    " %d skipped, %d withheld, %d failed",
                    report.scheduled, report.reminded, report.delivered, report.retrying,
                    report.gone, report.skipped, report.withheld, report.failed,
                )  # fmt: skip
        except Exception:
            log.exception(
                "reminder round failed; trying again in %s s", settings.dispatch_interval_s
            )
        await asyncio.sleep(settings.dispatch_interval_s)


async def dispatch_round(
    settings: Settings, *, now: datetime | None = None, resolver: Resolver = system_resolver
) -> RoundReport:
    """Schedule what is due and send what is queued, batch by batch, until both are empty.

    `now` fixes the round's clock (tests use it to step past a backoff); by default each
    step reads the wall clock. `resolver` looks push services' hosts up (tests give their
    own answers).
    """
    key = await services.vapid_key()
    allowed = parse_allowed_hosts(settings.push_allowed_hosts)
    report = RoundReport()
    while True:
        scheduled = await schedule_due(now or _now())
        report.add(scheduled)
        report.add(await send_due(settings, key, allowed, now=now, resolver=resolver))
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
        assignees = {a for a in map(_assignee, tasks) if a}
        subscriptions = await _subscriptions_of(assignees)
        users = await _users(assignees)
        names = await _account_names({str(a) for t in tasks if (a := t.values["account_id"])})
        ids = [t.id for t in tasks]
        for chunk in _chunks(ids, IN_CHUNK):
            # A reminder still waiting for an earlier remind_at is replaced by this one.
            await db.fetch(
                f"DELETE FROM push_deliveries WHERE task_id IN ({_marks(chunk)})", *chunk
            )
        queued: list[list[Any]] = []
        for task in tasks:
            assignee = _assignee(task) or ""
            if not _may_be_reminded(users.get(assignee), task.scope):
                report.withheld += 1
                continue
            payload = json.dumps(reminder_payload(task, names), separators=(",", ":"))
            for subscription_id in subscriptions.get(assignee, []):
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
    resolver: Resolver = system_resolver,
) -> RoundReport:
    """Stage 2: claim queued deliveries whose time has come and send them, batch by batch."""
    report = RoundReport()
    while True:
        claimed = await _claim(now or _now(), CLAIM_BATCH)
        if not claimed:
            return report
        # One lookup per push service and batch; each send still connects to what it checked.
        batch_resolver = RememberingResolver(resolver)
        report.add(await _deliver(settings, key, allowed, claimed, now, batch_resolver))


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
    resolver: Resolver,
) -> RoundReport:
    report = RoundReport(claimed=len(claimed))
    outcomes = _Outcomes()
    tasks = await _rows_by_id(
        "SELECT id, done, deleted, remind_at, assignee_id, author_id, scope FROM tasks",
        [c.task_id for c in claimed],
    )
    subscriptions = await _rows_by_id(
        "SELECT id, user_id, endpoint, p256dh, auth FROM push_subscriptions",
        [c.subscription_id for c in claimed],
    )
    # Read now, not when the reminder was queued: a user deactivated or moved to another
    # team since, or a task whose account moved, must not be reminded.
    users = await _users({str(row["user_id"]) for row in subscriptions.values()})
    to_send: list[tuple[_Claimed, dict[str, Any], str]] = []
    for delivery in claimed:
        subscription = subscriptions.get(delivery.subscription_id)
        task = tasks.get(delivery.task_id)
        if subscription is None or task is None or not _still_due(delivery, task, subscription):
            outcomes.done.append(delivery.id)
            report.skipped += 1
            continue
        if not _may_be_reminded(users.get(str(subscription["user_id"])), str(task["scope"])):
            # Dropped for good: it would be withheld again at every try.
            outcomes.done.append(delivery.id)
            report.withheld += 1
            log.info("reminder for task %s withheld: its assignee no longer sees it", task["id"])
            continue
        try:
            origin = parse_endpoint(subscription["endpoint"], allowed).origin
        except PushEndpointRefused as exc:
            # FIELDCRM_PUSH_ALLOWED_HOSTS changed since it was stored: never send there.
            log.warning(
                "dropping a subscription the server no longer sends to: %s", loggable(exc.detail)
            )
            outcomes.gone.append(delivery.subscription_id)
            report.gone += 1
            continue
        to_send.append((delivery, subscription, origin))

    sends = _Sends(settings, key, allowed, resolver)
    results = await asyncio.gather(*(sends.send(d, s, o) for d, s, o in to_send))
    after = now or _now()
    gone_subscriptions: set[str] = set()
    for (delivery, _, _), outcome in zip(to_send, results, strict=True):
        if delivery.id in sends.untried:
            # Not sent, so not an attempt: it waits as long as its last failure asked.
            wait = backoff_s(max(delivery.attempts, 1), jitter=0.2)
            outcomes.retry.append(
                (delivery.id, delivery.attempts, after + timedelta(seconds=wait), outcome.detail)
            )
            report.retrying += 1
        elif outcome.delivered:
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


class _Sends:
    """The sends of one batch. At most SEND_CONCURRENCY are in flight, at most
    PER_SERVICE_CONCURRENCY of them to one push service, and once a send to a service gets no
    answer (timed out, unreachable, not resolved) no more are tried on it in this batch: they
    wait for their next try without a request. So a service that hangs costs the batch one
    timeout and a few threads, and other services' sends go on meanwhile."""

    def __init__(
        self, settings: Settings, key: VapidKey, allowed: tuple[str, ...], resolver: Resolver
    ) -> None:
        self._settings, self._key, self._allowed, self._resolver = settings, key, allowed, resolver
        self._in_flight = asyncio.Semaphore(SEND_CONCURRENCY)
        self._per_service: dict[str, asyncio.Semaphore] = {}
        self._stalled: set[str] = set()
        self.untried: set[str] = set()  # deliveries put back without a request

    async def send(
        self, delivery: _Claimed, subscription: dict[str, Any], origin: str
    ) -> PushOutcome:
        service = self._per_service.setdefault(origin, asyncio.Semaphore(PER_SERVICE_CONCURRENCY))
        # The service's own limit first: sends waiting on a slow service hold no other slot.
        async with service, self._in_flight:
            if origin in self._stalled:
                self.untried.add(delivery.id)
                return PushOutcome(
                    None, gone=False, retry=True, detail=f"not tried: {origin} is not answering"
                )
            outcome = await self._send(delivery, subscription)
            if outcome.status is None and outcome.retry:
                self._stalled.add(origin)
            return outcome

    async def _send(self, delivery: _Claimed, subscription: dict[str, Any]) -> PushOutcome:
        info = {
            "endpoint": subscription["endpoint"],
            "keys": {"p256dh": subscription["p256dh"], "auth": subscription["auth"]},
        }
        try:
            # The deadline frees the batch; the sender thread stops at its own timeouts.
            return await asyncio.wait_for(
                send_push(
                    info,
                    delivery.payload,
                    self._key,
                    subject=self._settings.push_subject,
                    ttl=MESSAGE_TTL_S,
                    timeout=SEND_TIMEOUT_S,
                    allowed=self._allowed,
                    resolver=self._resolver,
                ),
                SEND_DEADLINE_S,
            )
        except TimeoutError:
            detail = f"push service did not finish within {SEND_DEADLINE_S:.0f} s"
            return PushOutcome(None, gone=False, retry=True, detail=detail)
        except Exception as exc:  # a bug or an odd library error: retry, and say so
            log.exception("sending a reminder failed")
            return PushOutcome(None, gone=False, retry=True, detail=f"{type(exc).__name__}")


def _still_due(delivery: _Claimed, task: dict[str, Any], subscription: dict[str, Any]) -> bool:
    """Checked again just before sending: the rep may have finished or moved the task, or
    handed it to someone else, since the reminder was queued."""
    if _truthy(task["done"]) or _truthy(task["deleted"]):
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


def _may_be_reminded(user: dict[str, Any] | None, scope: str) -> bool:
    """SPEC 2 and 6: a reminder goes only to an active user who sees the task (its scope is
    their team's or their own, or they are an admin), as the records core decides."""
    if user is None or not _truthy(user["active"]):
        return False
    actor = Actor(str(user["id"]), str(user["username"]), str(user["role"]), str(user["team_id"]))
    return actor.sees(scope)


async def _users(user_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Who the users are now: active, role and team, straight from `users`."""
    return await _rows_by_id(
        "SELECT id, username, role, team_id, active FROM users", sorted(user_ids)
    )


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
