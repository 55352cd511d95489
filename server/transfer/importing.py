"""The import of SPEC section 8: a file's rows checked one by one, matched against what
exists (section 9's rule, or the record's id) and against each other, then written through
the one writer in short batches, so they reach phones like any write and syncing phones
never wait long for the writer's lock.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from server import db
from server.core.actor import Actor, scope_filter, team_scope
from server.core.fields import SPECS, parse_value
from server.core.phones import e164
from server.core.writer import Edit, Source, writing
from server.errors import ApiError
from server.transfer import columns, matching
from server.transfer.reading import Sheet, read_upload
from sync.protocol import Rejected

log = logging.getLogger("fieldcrm.import")

# A write transaction holds the writer's lock (and, on SQLite, the event loop) for about
# BATCH_MS before its commit: the batch's size follows the rows' measured cost, within
# these bounds.
BATCH_MS = 20.0
FIRST_BATCH, MIN_BATCH, MAX_BATCH = 25, 5, 500
# Checking rows gives the event loop a turn this often: a request waits up to this long
# each time it waits on I/O (a sync on PostgreSQL does a dozen times; 10 ms gave a phone's
# syncs a p99 of 400-500 ms while 50,000 rows were checked).
SLICE_MS = 2.0
MAX_RUNNING = 2  # imports in the background at once, per process
MAX_REPORTED_ERRORS = 1_000
REQUIRED = {"accounts": ("name",), "contacts": ("name",)}
ADDRESS = ("street", "city", "region", "postal_code", "country")
IMPORTABLE = ("accounts", "contacts")

_json = msgspec.json.Encoder()


class _DryRun(Exception):
    """Raised at the end of a dry run's batch to roll it back."""


@dataclass(slots=True)
class Planned:
    """A record the import writes: created, or an existing one whose empty fields it fills."""

    number: int  # the row's number in the file
    record_id: str
    action: str  # "create" | "update"
    fields: dict[str, Any]
    columns: dict[str, str]  # field -> the column it came from, for error messages
    geocode: bool = False


@dataclass
class Report:
    rows: int = 0
    created: int = 0
    updated: int = 0
    duplicates: int = 0
    geocode: int = 0  # accounts created without a position, for the geocoder to place
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    unknown_columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    encoding: str = ""
    preview: list[dict[str, Any]] = field(default_factory=list)

    def error(self, row: int, column: str, error: str, detail: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"row": row, "column": column, "error": error, "detail": detail})

    def answer(self, import_id: str | None, dry_run: bool) -> dict[str, Any]:
        return {"import_id": import_id, "dry_run": dry_run, **self.saved()}

    def saved(self) -> dict[str, Any]:
        """What the import log keeps (and the status shows) besides its counters."""
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "geocode": self.geocode,
            "errors": self.errors,
            "error_count": self.error_count,
            "unknown_columns": self.unknown_columns,
            "ignored_columns": self.ignored_columns,
            "encoding": self.encoding,
            "preview": self.preview,
        }


@dataclass
class Context:
    """What rows are checked against: the records in the import's scope, and names."""

    table: str
    existing: dict[str, dict[str, Any]]  # id -> row, the records the rows may match
    index: matching.Index
    users: dict[str, str]  # username (lower case) -> user id
    accounts_by_name: dict[str, list[str]] = field(default_factory=dict)  # contacts only
    account_countries: dict[str, str | None] = field(default_factory=dict)


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
        context = await _context(job.table, scopes)
        _settle()
        planned = await _plan(job, context)
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


async def _context(table: str, scopes: tuple[str, ...] | None) -> Context:
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
        existing = {str(r["id"]): r for r in accounts}
        index = await _index_of("accounts", accounts, matching.account_keys)
        return Context(table, existing, index, users)
    by_name: dict[str, list[str]] = {}
    for row in accounts:
        by_name.setdefault(matching.name_key(row["name"]), []).append(str(row["id"]))
    countries = {str(r["id"]): r["country"] for r in accounts}
    contacts = await db.fetch(
        "SELECT id, account_id, name, title, phone, email FROM contacts"
        f" WHERE deleted = {{}}{where}",
        False,
        *args,
    )
    existing = {str(r["id"]): r for r in contacts}
    index = await _index_of(
        "contacts",
        contacts,
        lambda r: matching.contact_keys(r, e164(r["phone"], countries.get(str(r["account_id"])))),
    )
    return Context(table, existing, index, users, by_name, countries)


async def _index_of(
    table: str, rows: list[dict[str, Any]], keys_of: Callable[[dict[str, Any]], matching.Keys]
) -> matching.Index:
    """The records' matching keys (seconds for 100,000 records), on the event loop in
    slices of SLICE_MS, as _plan: a thread would hold the interpreter's lock against the
    loop, for up to the switch interval each time the loop waits on I/O."""
    index = matching.Index(table=table)
    turn = time.perf_counter()
    for row in rows:
        if (time.perf_counter() - turn) * 1000 > SLICE_MS:
            await asyncio.sleep(0)
            turn = time.perf_counter()
        index.add(keys_of(row))
    return index


# -- checking each row --------------------------------------------------------------------


async def _plan(job: Job, context: Context) -> list[Planned]:
    """The records the rows make or fill; each row's errors and duplicates in the report.
    Pure computation (seconds for 50,000 rows), on the event loop in slices of SLICE_MS:
    a thread would hold the interpreter's lock against the loop for as long."""
    table, report = job.table, job.report
    planned: list[Planned] = []
    in_file = matching.Index(table=table)
    by_id: dict[str, Planned] = {}  # the file's records so far, by id
    turn, slices = time.perf_counter(), 0
    for number, cells in zip(job.sheet.numbers, job.sheet.rows, strict=True):
        if (time.perf_counter() - turn) * 1000 > SLICE_MS:
            slices += 1
            if slices % 20 == 0:
                _settle()  # every 200 ms or so: the plan grows
            await asyncio.sleep(0)
            turn = time.perf_counter()
        row = _row(table, number, cells, job.used, job.sheet.header, context, report)
        if row is None:
            continue
        fields, sources, row_id = row
        if len(report.preview) < 5:
            report.preview.append({"row": number, **fields})
        keys = _keys(table, fields, context, row_id)
        # The record this row is: by its id, else by the rule, among what exists...
        match_id: str | None = None
        if row_id is not None and row_id in context.existing:
            match_id = row_id
        elif row_id is None or row_id not in by_id:
            best = context.index.best(keys)
            match_id = best[0] if best else None
        if match_id is not None:
            existing = context.existing[match_id]
            filled = {
                name: value
                for name, value in fields.items()
                if existing.get(name) in (None, "") and value not in (None, "")
            }
            if job.on_duplicate == "update" and filled:
                planned.append(Planned(number, match_id, "update", filled, sources))
            else:
                report.duplicates += 1
            continue
        # ... else among the file's earlier rows: one record, the later row fills it.
        earlier = by_id.get(row_id) if row_id is not None else None
        if earlier is None:
            best = in_file.best(keys)
            earlier = by_id[best[0]] if best else None
        if earlier is not None:
            for name, value in fields.items():
                if earlier.fields.get(name) in (None, "") and value not in (None, ""):
                    earlier.fields[name] = value
                    earlier.columns[name] = sources[name]
            report.duplicates += 1
            continue
        record_id = row_id or str(uuid.uuid4())
        if table == "accounts" and job.team_id and "owner_id" not in fields:
            fields["team_id"] = job.team_id
        plan = Planned(number, record_id, "create", fields, sources)
        planned.append(plan)
        by_id[record_id] = plan
        keys.id = record_id
        in_file.add(keys)
    for plan in planned:
        if table == "accounts" and plan.action == "create":
            placed = plan.fields.get("lat") is not None and plan.fields.get("lng") is not None
            plan.geocode = not placed and any(plan.fields.get(n) for n in ADDRESS)
    return planned


def _row(
    table: str,
    number: int,
    cells: list[str],
    used: dict[int, str],
    header: list[str],
    context: Context,
    report: Report,
) -> tuple[dict[str, Any], dict[str, str], str | None] | None:
    """A row's fields (or None when it has errors, which are reported), the column each
    came from, and the id it names."""
    fields: dict[str, Any] = {}
    sources: dict[str, str] = {}
    row_id: str | None = None
    errors = report.error_count
    specs = SPECS[table]
    for index, target in used.items():
        text = columns.cell_text(cells[index]) if index < len(cells) else None
        column = header[index].strip()[:100]  # as the file names it
        if text is None:
            continue
        if target == "id":
            try:
                row_id = str(uuid.UUID(text))
            except ValueError:
                report.error(number, column, "invalid", f"id {text[:60]!r} is not a UUID.")
            continue
        if target == "owner":
            user_id = context.users.get(text.lower())
            if user_id is None:
                report.error(number, column, "not_found", f"No user is called {text[:60]!r}.")
            else:
                fields["owner_id"], sources["owner_id"] = user_id, column
            continue
        if target == "account":
            account_id = _account(text, context)
            if account_id is None:
                report.error(
                    number, column, "not_found", f"No account you see is called {text[:100]!r}."
                )
            elif account_id == "":
                report.error(
                    number,
                    column,
                    "ambiguous",
                    f"Several accounts are called {text[:100]!r}; give the account's id instead.",
                )
            else:
                fields["account_id"], sources["account_id"] = account_id, column
            continue
        try:
            value = parse_value(specs[target], columns.cell_value(table, target, text))
        except ValueError as exc:
            code = "out_of_range" if "between" in str(exc) else "invalid"
            report.error(number, column, code, f"{column} {exc} (found {text[:60]!r}).")
            continue
        fields[target], sources[target] = value, column
    named = {target: header[index].strip()[:100] for index, target in used.items()}
    for name in REQUIRED[table]:
        if name not in fields and report.error_count == errors:
            column = named.get(name, name)
            report.error(number, column, "required", f"{column} is required and is empty.")
    if table == "contacts" and "account_id" not in fields and report.error_count == errors:
        column = named.get("account", named.get("account_id", "account"))
        report.error(number, column, "required", "Name the contact's account.")
    return (fields, sources, row_id) if report.error_count == errors else None


def _account(text: str, context: Context) -> str | None:
    """The account a contact's cell names, by id or by name; "" when several have it."""
    try:
        account_id = str(uuid.UUID(text))
    except ValueError:
        ids = context.accounts_by_name.get(matching.name_key(text), [])
        return None if not ids else ids[0] if len(ids) == 1 else ""
    return account_id if account_id in context.account_countries else None


def _keys(
    table: str, fields: dict[str, Any], context: Context, row_id: str | None
) -> matching.Keys:
    if table == "accounts":
        values = {**fields, "id": row_id or ""}
        values["phone_e164"] = e164(fields.get("phone"), fields.get("country"))
        return matching.account_keys(values)
    country = context.account_countries.get(str(fields.get("account_id")))
    return matching.contact_keys({**fields, "id": row_id or ""}, e164(fields.get("phone"), country))


# -- writing ------------------------------------------------------------------------------

_FIELD_IN_DETAIL = re.compile(r"\b(?:accounts|contacts)\.(\w+)")


async def _write(job: Job, planned: list[Planned]) -> None:
    """Write the planned records through the one writer, a short transaction at a time:
    each batch is as many rows as take about BATCH_MS to apply, as measured on the batch
    before, so the writer's lock is never held for long whatever a row costs."""
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
