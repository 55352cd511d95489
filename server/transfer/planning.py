"""Checking an import's rows (SPEC section 8): each row's values and errors, and the record
it is (by its id, or by section 9's rule among what exists and the file's earlier rows):
the plan of what the import writes, and the report's duplicates, errors and preview.

Pure computation: seconds for 50,000 rows against 100,000 records. A small import (its rows
and the records in its scope together up to IN_PROCESS_MAX) is checked on the event loop in
slices of SLICE_MS; a larger one in a child process (this module run in a child `python`,
as server/transfer/reading.py reads a large file): the rows and what exists go to it in
chunks, the plan comes back in chunks, each encoded or decoded on the loop in a millisecond
or two, and the loop serves phones while the child checks. On the loop, a phone's request
waits up to a slice each time it waits on I/O (a sync does a dozen times); in a thread it
would wait as long for the interpreter's lock.

Both run the same generator (`plan_steps`), so the child plans exactly what this process
would (tests/unit/test_import_planning.py). The child imports of the server only what
checking needs (fields, phones, columns, matching): no database, no app.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from server.core.fields import SPECS, parse_value
from server.core.phones import default_region, e164, set_default_region
from server.transfer import columns, matching
from server.transfer.reading import FRAME, ROOT

log = logging.getLogger("fieldcrm.import")

# Checking rows gives the event loop a turn this often: a request waits up to this long
# each time it waits on I/O (a sync on PostgreSQL does a dozen times; 10 ms gave a phone's
# syncs a p99 of 400-500 ms while 50,000 rows were checked).
SLICE_MS = 2.0
# Rows plus records in scope up to this are checked on the loop (tens of ms in all);
# more in a child process, whose start costs a few hundred ms.
IN_PROCESS_MAX = 2_000
CHUNK = 1_000  # rows, records or planned records a message to or from the child
CHILD_TIMEOUT_S = 600.0
MAX_REPORTED_ERRORS = 1_000
REQUIRED = {"accounts": ("name",), "contacts": ("name",)}
ADDRESS = ("street", "city", "region", "postal_code", "country")

T = TypeVar("T")


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
class Task:
    """What the rows are checked for: the import's table, its file, its choices."""

    table: str
    header: list[str]
    numbers: list[int]  # each row's number in the file
    rows: list[list[str]]
    used: dict[int, str]  # column index -> the field (or owner, account, id) it fills
    on_duplicate: str  # "skip" | "update"
    team_id: str | None


@dataclass
class Existing:
    """What is in the import's scope, as read from the database: the rows may match it."""

    users: dict[str, str]  # username (lower case) -> user id: every user
    accounts: list[dict[str, Any]]
    contacts: list[dict[str, Any]] = field(default_factory=list)  # a contacts import's

    @property
    def size(self) -> int:
        return len(self.accounts) + len(self.contacts)


@dataclass
class Context:
    """What rows are checked against: the records in the import's scope, and names."""

    table: str
    existing: dict[str, dict[str, Any]]  # id -> row, the records the rows may match
    index: matching.Index
    users: dict[str, str]  # username (lower case) -> user id
    accounts_by_name: dict[str, list[str]] = field(default_factory=dict)  # contacts only
    account_countries: dict[str, str | None] = field(default_factory=dict)


async def plan(task: Task, existing: Existing, report: Report) -> list[Planned]:
    """The records the rows make or fill; each row's errors, duplicates and the preview in
    `report`. On the loop in slices, or in a child process (see the module's docstring)."""
    if len(task.rows) + existing.size <= IN_PROCESS_MAX:
        return await _in_slices(plan_steps(task, existing, report))
    return await plan_in_child(task, existing, report)


async def _in_slices(steps: Generator[None, None, T]) -> T:
    turn, slices = time.perf_counter(), 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: T = done.value
            return result
        if (time.perf_counter() - turn) * 1000 > SLICE_MS:
            slices += 1
            if slices % 20 == 0:
                gc.freeze()  # every 200 ms or so: see importing._settle()
            await asyncio.sleep(0)
            turn = time.perf_counter()


def _to_end(steps: Generator[None, None, T]) -> T:
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: T = done.value
            return result


# -- checking each row --------------------------------------------------------------------


def plan_steps(
    task: Task, existing: Existing, report: Report
) -> Generator[None, None, list[Planned]]:
    """plan() as steps of a row or a record each (yields between them), whoever runs them."""
    context = yield from _context(task.table, existing)
    table = task.table
    planned: list[Planned] = []
    in_file = matching.Index(table=table)
    by_id: dict[str, Planned] = {}  # the file's records so far, by id
    for number, cells in zip(task.numbers, task.rows, strict=True):
        yield
        row = _row(task, number, cells, context, report)
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
            found = context.existing[match_id]
            filled = {
                name: value
                for name, value in fields.items()
                if found.get(name) in (None, "") and value not in (None, "")
            }
            if task.on_duplicate == "update" and filled:
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
        if table == "accounts" and task.team_id and "owner_id" not in fields:
            fields["team_id"] = task.team_id
        made = Planned(number, record_id, "create", fields, sources)
        planned.append(made)
        by_id[record_id] = made
        keys.id = record_id
        in_file.add(keys)
    for made in planned:
        if table == "accounts" and made.action == "create":
            placed = made.fields.get("lat") is not None and made.fields.get("lng") is not None
            made.geocode = not placed and any(made.fields.get(n) for n in ADDRESS)
    return planned


def _context(table: str, existing: Existing) -> Generator[None, None, Context]:
    """What exists, indexed by section 9's keys (seconds for 100,000 records)."""
    if table == "accounts":
        index = yield from _index_of("accounts", existing.accounts, matching.account_keys)
        return Context(table, {str(r["id"]): r for r in existing.accounts}, index, existing.users)
    by_name: dict[str, list[str]] = {}
    for row in existing.accounts:
        by_name.setdefault(matching.name_key(row["name"]), []).append(str(row["id"]))
    countries = {str(r["id"]): r["country"] for r in existing.accounts}
    index = yield from _index_of(
        "contacts",
        existing.contacts,
        lambda r: matching.contact_keys(r, e164(r["phone"], countries.get(str(r["account_id"])))),
    )
    found = {str(r["id"]): r for r in existing.contacts}
    return Context(table, found, index, existing.users, by_name, countries)


def _index_of(
    table: str, rows: list[dict[str, Any]], keys_of: Callable[[dict[str, Any]], matching.Keys]
) -> Generator[None, None, matching.Index]:
    index = matching.Index(table=table)
    for row in rows:
        yield
        index.add(keys_of(row))
    return index


def _row(
    task: Task, number: int, cells: list[str], context: Context, report: Report
) -> tuple[dict[str, Any], dict[str, str], str | None] | None:
    """A row's fields (or None when it has errors, which are reported), the column each
    came from, and the id it names."""
    table, header = task.table, task.header
    fields: dict[str, Any] = {}
    sources: dict[str, str] = {}
    row_id: str | None = None
    errors = report.error_count
    specs = SPECS[table]
    for index, target in task.used.items():
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
    named = {target: header[index].strip()[:100] for index, target in task.used.items()}
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


# -- in a child process -------------------------------------------------------------------

_encode = msgspec.msgpack.Encoder()


async def plan_in_child(task: Task, existing: Existing, report: Report) -> list[Planned]:
    """plan() in a child process: what it needs sent CHUNK at a time, the plan received so."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; sys.path.insert(0, sys.argv[1]);"
        " from server.transfer.planning import _child; _child()",
        ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    stderr = asyncio.ensure_future(child.stderr.read())
    try:
        async with asyncio.timeout(CHILD_TIMEOUT_S):
            try:
                await _send(child.stdin, task, existing)
                return await _receive(child.stdout, report)
            except (asyncio.IncompleteReadError, ConnectionError):
                await child.wait()
                log.error("checking rows in a child process failed: %s", (await stderr)[-2000:])
                raise RuntimeError(
                    f"the child process checking the rows ended ({child.returncode})"
                ) from None
    finally:
        if not stderr.done():
            stderr.cancel()
        if child.returncode is None:
            child.kill()
        await child.wait()


async def _send(stdin: asyncio.StreamWriter, task: Task, existing: Existing) -> None:
    async def send(message: list[Any]) -> None:
        data = _encode.encode(message)
        stdin.write(FRAME.pack(len(data)) + data)
        await stdin.drain()
        await asyncio.sleep(0)  # drain() returns at once while the pipe takes more

    header = [task.table, task.header, list(task.used.items()), task.on_duplicate, task.team_id]
    await send(["task", *header, default_region()])
    await send(["users", existing.users])
    for kind in ("accounts", "contacts"):
        records = getattr(existing, kind)
        for start in range(0, len(records), CHUNK):
            await send([kind, records[start : start + CHUNK]])
    for start in range(0, len(task.rows), CHUNK):
        end = start + CHUNK
        await send(["rows", task.numbers[start:end], task.rows[start:end]])
    await send(["end"])
    stdin.close()


async def _receive(stdout: asyncio.StreamReader, report: Report) -> list[Planned]:
    decode = msgspec.msgpack.Decoder()
    planned: list[Planned] = []
    while True:
        (size,) = FRAME.unpack(await stdout.readexactly(FRAME.size))
        message = decode.decode(await stdout.readexactly(size))
        if message[0] == "planned":
            planned += (Planned(*made) for made in message[1])
            if len(planned) % (20 * CHUNK) == 0:
                gc.freeze()  # see importing._settle()
            await asyncio.sleep(0)
        else:
            _, report.duplicates, report.error_count, report.errors, report.preview = message
            return planned


def _child() -> None:
    """The child's side: what plan_in_child() sends on stdin, the plan on stdout."""
    gc.disable()  # millions of objects, no cycles, and the process ends with the plan
    stdin, out = sys.stdin.buffer, sys.stdout.buffer
    decode = msgspec.msgpack.Decoder()
    task = Task("", [], [], [], {}, "skip", None)
    existing = Existing({}, [])
    while True:
        (size,) = FRAME.unpack(stdin.read(FRAME.size))
        message = decode.decode(stdin.read(size))
        kind = message[0]
        if kind == "task":
            task.table, task.header, used, task.on_duplicate, task.team_id = message[1:6]
            task.used = {int(index): target for index, target in used}
            set_default_region(message[6])
        elif kind == "users":
            existing.users = message[1]
        elif kind in ("accounts", "contacts"):
            getattr(existing, kind).extend(message[1])
        elif kind == "rows":
            task.numbers += message[1]
            task.rows += message[2]
        else:
            break
    report = Report()
    planned = _to_end(plan_steps(task, existing, report))

    def send(message: list[Any]) -> None:
        data = _encode.encode(message)
        out.write(FRAME.pack(len(data)) + data)

    for start in range(0, len(planned), CHUNK):
        send(
            [
                "planned",
                [
                    [p.number, p.record_id, p.action, p.fields, p.columns, p.geocode]
                    for p in planned[start : start + CHUNK]
                ],
            ]
        )
    send(["report", report.duplicates, report.error_count, report.errors, report.preview])
    out.flush()
