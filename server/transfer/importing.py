"""The import of SPEC section 8: a file's rows checked one by one, matched against what
exists (section 9's rule, or the record's id) and against each other (on the event loop in
slices, or for a large import in a child process: server/transfer/planning.py), then
written through the one writer in short batches, so they reach phones like any write and
syncing phones never wait long for the writer's lock.

A dry run goes through the very same steps, writes included, and rolls each batch back:
its answer is what a real run would answer (the rules that refuse a write, a manager's
team, ... are the writer's own), and nothing stays.

An import runs on its request (the answer is the report) or, with `background=True`, as a
job of this process: the file is read and its header checked on the request, which answers
at once (202); the rows are then checked and written by the job, whose progress and report
`GET /api/import/{id}` shows (server/transfer/services.py). A file that cannot be read is
refused on the request either way, before anything is written.

Each real run, and each run in the background, is logged (`imports`, `import_items`): its
progress, its report, and for each record it created or filled, the seq of that write, so
that a revert can tell what was changed since (server/transfer/services.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from server import db
from server.core.actor import Actor, scope_filter, team_scope
from server.core.bulk import LOGGED, Statistics, bulk_write
from server.core.writer import Edit, Source, writing
from server.errors import ApiError
from server.transfer import columns, planning
from server.transfer.planning import REQUIRED, Existing, Planned, Report
from server.transfer.reading import Sheet, read_upload
from sync.protocol import Rejected

log = logging.getLogger("fieldcrm.import")

# A write transaction holds the writer's lock (and, on SQLite, the event loop) for about
# BATCH_MS before its commit: the batch's size follows the rows' measured cost, within
# these bounds.
BATCH_MS = 20.0
FIRST_BATCH, MIN_BATCH, MAX_BATCH = 25, 5, 500
MAX_RUNNING = 2  # imports in the background at once, per process
IMPORTABLE = ("accounts", "contacts")

_json = msgspec.json.Encoder()


class _DryRun(Exception):
    """Raised at the end of a dry run's batch to roll it back."""


@dataclass
class Job:
    """One import: the file as read, and what it was asked to do."""

    actor: Actor
    table: str
    sheet: Sheet
    used: dict[int, str]  # column index -> the field (or owner, account, id) it fills
    on_duplicate: str
    dry_run: bool
    team_id: str | None
    report: Report
    import_id: str | None = None  # logged: a real run, or any run in the background


async def run_import(
    actor: Actor,
    table: str,
    body: bytes,
    *,
    dry_run: bool = False,
    on_duplicate: str = "skip",
    import_id: str | None = None,
    team_id: str | None = None,
    background: bool = False,
) -> dict[str, Any]:
    """Import `body` (CSV or xlsx) into `table` as `actor`: the report (SPEC section 8);
    with `background`, the import as it starts (`state` "running"), its rows checked and
    written by a job of this process."""
    job = await _read(actor, table, body, dry_run, on_duplicate, team_id)
    if background:
        return await _start_in_background(job, import_id)
    if not dry_run:
        job.import_id = await _start(job, import_id)
    await _run(job)
    return job.report.answer(job.import_id, dry_run)


async def _read(
    actor: Actor,
    table: str,
    body: bytes,
    dry_run: bool,
    on_duplicate: str,
    team_id: str | None,
) -> Job:
    """The file read and its header checked, or ApiError: what is refused whole."""
    if table not in IMPORTABLE:
        raise ApiError(404, "not_found", "Import accounts or contacts.")
    if on_duplicate not in ("skip", "update"):
        raise ApiError(400, "malformed", "on_duplicate must be skip or update.")
    sheet = await read_upload(body)
    _settle()
    used, unknown, ignored = columns.map_header(table, sheet.header)
    targets = set(used.values())
    missing = [name for name in REQUIRED[table] if name not in targets]
    if table == "contacts" and not targets & {"account", "account_id"}:
        missing.append("account")
    if missing:
        raise ApiError(
            422,
            "no_header",
            f"The first row must name the columns; none is {' or '.join(missing)}"
            f" (found: {', '.join(h[:40] for h in sheet.header[:10])}).",
        )
    report = Report(
        rows=len(sheet.rows),
        unknown_columns=unknown,
        ignored_columns=ignored,
        encoding=sheet.encoding,
    )
    return Job(actor, table, sheet, used, on_duplicate, dry_run, team_id, report)


def _settle() -> None:
    """Leave what the import holds (the file's rows, what exists, the plan: hundreds of
    thousands of objects for 50,000 rows) out of the garbage collector's full collections,
    as `fieldcrm serve` does with what it loads at start: each would otherwise go through
    all of it, holding the event loop, and the phones' requests, for a second. They are
    freed as usual (by reference counting) once the import lets go of them."""
    gc.freeze()


async def _run(job: Job) -> None:
    """Check the rows, write them, and log the outcome (when the import is logged)."""
    try:
        scopes = (team_scope(job.team_id),) if job.team_id else job.actor.scopes
        existing = await _existing(job.table, scopes)
        _settle()
        task = planning.Task(
            job.table,
            job.sheet.header,
            job.sheet.numbers,
            job.sheet.rows,
            job.used,
            job.on_duplicate,
            job.team_id,
        )
        planned = await planning.plan(task, existing, job.report)
        del task, existing
        _settle()
        if job.import_id is not None:
            await _save_report(job.import_id, job.report)  # the rows' errors, the preview
        await _write(job, planned)
    except BaseException as exc:
        if job.import_id is not None:
            failure = (
                "The import was stopped."
                if not isinstance(exc, Exception)
                else (exc.detail if isinstance(exc, ApiError) else "The import failed.")
            )
            # Marked even when the job is being cancelled (the server stopping).
            with contextlib.suppress(Exception):
                await asyncio.shield(_finish(job.import_id, "failed", job.report, failure))
        raise
    if job.import_id is not None:
        await _finish(job.import_id, "done", job.report)


# -- in the background --------------------------------------------------------------------

_jobs: dict[str, asyncio.Task[None]] = {}  # this process's imports in the background


async def _start_in_background(job: Job, import_id: str | None) -> dict[str, Any]:
    if len(_jobs) >= MAX_RUNNING:
        raise ApiError(
            429,
            "busy",
            f"{MAX_RUNNING} imports are running on this server; try again when one ends.",
        )
    job.import_id = await _start(job, import_id)
    task = asyncio.get_running_loop().create_task(_background(job))
    _jobs[job.import_id] = task
    task.add_done_callback(lambda _: _jobs.pop(str(job.import_id), None))
    return {**job.report.answer(job.import_id, job.dry_run), "state": "running"}


async def _background(job: Job) -> None:
    try:
        await _run(job)
    except Exception:
        log.exception("import %s failed", job.import_id)


async def stop_imports() -> None:
    """Stop this process's imports in the background (the server is stopping): each is
    marked failed; what they wrote stays, and can be reverted."""
    tasks = list(_jobs.values())
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=10)


async def wait_for_imports() -> None:
    """Until this process's imports in the background have ended (for tests and tools)."""
    while _jobs:
        await asyncio.wait(list(_jobs.values()))


async def run_import_as(
    username: str | None,
    table: str,
    body: bytes,
    *,
    dry_run: bool,
    on_duplicate: str,
    team: str | None,
) -> dict[str, Any]:
    """The command line's import: as `username` (a manager or an admin; by default the
    first admin), into `team` (by name; an admin's choice)."""
    from server.auth.services import actor_for_user

    if username:
        rows = await db.fetch("SELECT id FROM users WHERE username = {}", username)
    else:
        rows = await db.fetch(
            "SELECT id FROM users WHERE role = {} AND active = {} ORDER BY username LIMIT 1",
            "admin",
            True,
        )
    actor = await actor_for_user(str(rows[0]["id"])) if rows else None
    if actor is None:
        who = f"an active user {username!r}" if username else "an active admin (use --as)"
        raise ApiError(404, "not_found", f"There is no {who}.")
    if not actor.is_manager:
        raise ApiError(403, "forbidden", f"{username} is a rep; only managers and admins import.")
    team_id = None
    if team:
        found = await db.fetch("SELECT id FROM teams WHERE name = {}", team)
        if not found:
            raise ApiError(404, "not_found", f"There is no team {team!r}.")
        team_id = str(found[0]["id"])
    return await run_import(
        actor, table, body, dry_run=dry_run, on_duplicate=on_duplicate, team_id=team_id
    )


# -- reading what is there ----------------------------------------------------------------


def _scoped(scopes: tuple[str, ...] | None) -> tuple[str, list[Any]]:
    if scopes is None:
        return "", []
    where, args = scope_filter(scopes)
    return f" AND {where}", args


async def _existing(table: str, scopes: tuple[str, ...] | None) -> Existing:
    where, args = _scoped(scopes)
    users = {
        str(r["username"]).lower(): str(r["id"])
        for r in await db.fetch("SELECT id, username FROM users")
    }
    accounts = await db.fetch(
        "SELECT id, name, status, phone, email, website, street, city, region, postal_code,"
        f" country, lat, lng, owner_id, phone_e164 FROM accounts WHERE deleted = {{}}{where}",
        False,
        *args,
    )
    if table == "accounts":
        return Existing(users, accounts)
    contacts = await db.fetch(
        "SELECT id, account_id, name, title, phone, email FROM contacts"
        f" WHERE deleted = {{}}{where}",
        False,
        *args,
    )
    return Existing(users, accounts, contacts)


# -- writing ------------------------------------------------------------------------------

_FIELD_IN_DETAIL = re.compile(r"\b(?:accounts|contacts)\.(\w+)")


async def _write(job: Job, planned: list[Planned]) -> None:
    """Write the planned records through the one writer, a short transaction at a time:
    each batch is as many rows as take about BATCH_MS to apply, as measured on the batch
    before, so the writer's lock is never held for long whatever a row costs. A batch does
    not give the loop a turn midway: it would hold the writer's lock while other requests
    run, and a phone's sync, which writes, would wait that much longer (docs/performance.md).
    The geocoder holds off meanwhile (a bulk write: server/core/bulk.py)."""
    statistics = Statistics((job.table, *LOGGED, "import_items"))
    with bulk_write():
        await _write_batches(job, planned, statistics)
        await statistics.done()  # nothing when nothing was written (a dry run)


async def _write_batches(job: Job, planned: list[Planned], statistics: Statistics) -> None:
    report, size, start = job.report, FIRST_BATCH, 0
    while start < len(planned):
        batch = planned[start : start + size]
        start += len(batch)
        outcome: list[tuple[Planned, int]] = []
        refused: list[tuple[Planned, Rejected]] = []
        # Progress in rows of the file: up to this batch's last row (all, after the last).
        done = min(batch[-1].number - 1, report.rows) if start < len(planned) else report.rows
        try:
            async with writing(Source.IMPORT) as writer:
                outcome, refused = [], []
                began = time.perf_counter()
                await writer.prefetch([Edit(job.table, p.record_id, p.fields) for p in batch])
                for plan in batch:
                    try:
                        edit = Edit(job.table, plan.record_id, dict(plan.fields))
                        await writer.apply(job.actor, edit)
                    except Rejected as rejected:
                        refused.append((plan, rejected))
                        continue
                    record = await writer.load(job.table, plan.record_id)
                    outcome.append((plan, record.seq if record is not None else 0))
                await writer.flush()
                took_ms = (time.perf_counter() - began) * 1000  # its turn, but the commit
                if job.dry_run:
                    raise _DryRun
                await _log_batch(job, outcome, done)
        except _DryRun:
            # A member that fails does not wait for its group's commit; the next batch
            # would join the same group, and the phones' writes in it would wait for the
            # whole dry run. An empty member waits for that commit, so the group ends here
            # (and carries a logged dry run's progress).
            async with db.write_transaction():
                if job.import_id is not None:
                    await _progress(job.import_id, done, outcome)
        size = next_batch_size(len(batch), took_ms)
        if not job.dry_run:
            await statistics.wrote(len(outcome))
        for plan, refusal in refused:
            found = _FIELD_IN_DETAIL.search(refusal.detail)
            column = plan.columns.get(found[1], found[1]) if found else ""
            report.error(plan.number, column, refusal.error, refusal.detail)
        for plan, _ in outcome:
            if plan.action == "create":
                report.created += 1
                report.geocode += plan.geocode
            else:
                report.updated += 1


def next_batch_size(size: int, took_ms: float) -> int:
    """How many rows the next write transaction takes: what fits BATCH_MS, at the pace
    the last one (`size` rows in `took_ms`) went."""
    return max(MIN_BATCH, min(MAX_BATCH, round(BATCH_MS * size / max(took_ms, 0.1))))


async def _log_batch(job: Job, outcome: list[tuple[Planned, int]], done: int) -> None:
    """In the batch's transaction: what it did to each record (for a revert), progress."""
    if job.import_id is None:
        return
    await db.insert_rows(
        "import_items",
        ("import_id", "record_id", "action", "fields", "seq", "geocode"),
        [
            (
                job.import_id,
                plan.record_id,
                "created" if plan.action == "create" else "updated",
                _json.encode(sorted(plan.fields)).decode(),
                seq,
                plan.geocode,
            )
            for plan, seq in outcome
        ],
    )
    await _progress(job.import_id, done, outcome)


async def _progress(import_id: str, done: int, outcome: list[tuple[Planned, int]]) -> None:
    created = sum(1 for plan, _ in outcome if plan.action == "create")
    await db.fetch(
        "UPDATE imports SET written = {}, created = created + {}, updated = updated + {},"
        " heartbeat_at = {} WHERE id = {}",
        done,
        created,
        len(outcome) - created,
        datetime.now(UTC),
        import_id,
    )


async def _start(job: Job, import_id: str | None) -> str:
    """Log the import as running; its id (the one asked for, or a new one)."""
    try:
        import_id = str(uuid.UUID(import_id)) if import_id else str(uuid.uuid4())
    except ValueError:
        raise ApiError(400, "malformed", "import_id must be a UUID.") from None
    now = datetime.now(UTC)
    async with db.transaction():
        if await db.fetch("SELECT id FROM imports WHERE id = {}", import_id):
            raise ApiError(409, "exists", "An import with this id exists already.")
        await db.fetch(
            "INSERT INTO imports (id, record_table, user_id, team_id, state, dry_run, rows,"
            " written, created, updated, duplicates, report, reverted, created_at,"
            " heartbeat_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            import_id,
            job.table,
            job.actor.user_id or None,
            job.team_id or job.actor.team_id or None,
            "running",
            job.dry_run,
            job.report.rows,
            0,
            0,
            0,
            0,
            _json.encode(job.report.saved()).decode(),
            "{}",
            now,
            now,
        )
    return import_id


async def _save_report(import_id: str, report: Report) -> None:
    """The report so far (the rows' own errors, the preview), while the rows are written."""
    await db.fetch(
        "UPDATE imports SET report = {}, duplicates = {}, heartbeat_at = {} WHERE id = {}",
        _json.encode(report.saved()).decode(),
        report.duplicates,
        datetime.now(UTC),
        import_id,
    )


async def _finish(import_id: str, state: str, report: Report, failure: str = "") -> None:
    now = datetime.now(UTC)
    saved = report.saved()
    if failure:
        # What was written is as the log has it: a batch cut short by the job's end may
        # have committed without the job hearing of it.
        saved["failure"] = failure
        await db.fetch(
            "UPDATE imports SET state = {}, report = {}, finished_at = {}, heartbeat_at = {}"
            " WHERE id = {}",
            state,
            _json.encode(saved).decode(),
            now,
            now,
            import_id,
        )
        return
    await db.fetch(
        "UPDATE imports SET state = {}, written = rows, duplicates = {}, created = {},"
        " updated = {}, report = {}, finished_at = {}, heartbeat_at = {} WHERE id = {}",
        state,
        report.duplicates,
        report.created,
        report.updated,
        _json.encode(saved).decode(),
        now,
        now,
        import_id,
    )
