"""The import of SPEC section 8: a file's rows checked one by one, matched against what
exists (section 9's rule, or the record's id) and against each other, then written through
the one writer in short batches, so they reach phones like any write and syncing phones
never wait long for the writer's lock.

A dry run goes through the very same steps, writes included, and rolls each batch back:
its answer is what a real run would answer (the rules that refuse a write, a manager's
team, ... are the writer's own), and nothing stays.

Each real run is logged (`imports`, `import_items`): its progress, its report, and for each
record it created or filled, the seq of that write, so that a revert can tell what was
changed since (server/transfer/services.py).
"""

from __future__ import annotations

import asyncio
import re
import uuid
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
from server.transfer.reading import Sheet, read_sheet
from sync.protocol import Rejected

BATCH = 100  # rows per write transaction: tens of ms of the writer's lock, not seconds
MAX_REPORTED_ERRORS = 1_000
REQUIRED = {"accounts": ("name",), "contacts": ("name",)}
ADDRESS = ("street", "city", "region", "postal_code", "country")
IMPORTABLE = ("accounts", "contacts")

_json = msgspec.json.Encoder()


class _DryRun(Exception):
    """Raised at the end of a dry run's batch to roll it back."""


@dataclass
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
        return {
            "import_id": import_id,
            "dry_run": dry_run,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "duplicates": self.duplicates,
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


async def run_import(
    actor: Actor,
    table: str,
    body: bytes,
    *,
    dry_run: bool = False,
    on_duplicate: str = "skip",
    import_id: str | None = None,
    team_id: str | None = None,
) -> dict[str, Any]:
    """Import `body` (CSV or xlsx) into `table` as `actor`; the report (SPEC section 8)."""
    if table not in IMPORTABLE:
        raise ApiError(404, "not_found", "Import accounts or contacts.")
    if on_duplicate not in ("skip", "update"):
        raise ApiError(400, "malformed", "on_duplicate must be skip or update.")
    sheet = await asyncio.to_thread(read_sheet, body)
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
    scopes = (team_scope(team_id),) if team_id else actor.scopes
    context = await _context(table, scopes)
    # Checking and matching rows is pure computation (a second or more for 50,000 rows):
    # in a thread, so the event loop keeps serving phones meanwhile.
    planned = await asyncio.to_thread(
        _plan, actor, table, sheet, used, context, on_duplicate, report, team_id
    )
    if not dry_run:
        import_id = await _start(actor, table, import_id, report.rows, team_id)
    else:
        import_id = None
    try:
        await _write(actor, table, planned, report, import_id, dry_run)
    except BaseException:
        if import_id is not None:
            await _finish(import_id, "failed", report)
        raise
    if import_id is not None:
        await _finish(import_id, "done", report)
    return report.answer(import_id, dry_run)


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
        index = await asyncio.to_thread(
            lambda: matching.index_of("accounts", (matching.account_keys(r) for r in accounts))
        )
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
    index = matching.index_of(
        "contacts",
        (
            matching.contact_keys(r, e164(r["phone"], countries.get(str(r["account_id"]))))
            for r in contacts
        ),
    )
    return Context(table, existing, index, users, by_name, countries)


# -- checking each row --------------------------------------------------------------------


def _plan(
    actor: Actor,
    table: str,
    sheet: Sheet,
    used: dict[int, str],
    context: Context,
    on_duplicate: str,
    report: Report,
    team_id: str | None,
) -> list[Planned]:
    planned: list[Planned] = []
    in_file = matching.Index(table=table)
    by_id: dict[str, Planned] = {}  # the file's records so far, by id
    for number, cells in zip(sheet.numbers, sheet.rows, strict=True):
        row = _row(table, number, cells, used, sheet.header, context, report)
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
            if on_duplicate == "update" and filled:
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
        if table == "accounts" and team_id and "owner_id" not in fields:
            fields["team_id"] = team_id
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


async def _write(
    actor: Actor,
    table: str,
    planned: list[Planned],
    report: Report,
    import_id: str | None,
    dry_run: bool,
) -> None:
    for start in range(0, len(planned), BATCH):
        batch = planned[start : start + BATCH]
        outcome: list[tuple[Planned, int]] = []
        refused: list[tuple[Planned, Rejected]] = []
        try:
            async with writing(Source.IMPORT) as writer:
                outcome, refused = [], []
                for plan in batch:
                    try:
                        await writer.apply(actor, Edit(table, plan.record_id, dict(plan.fields)))
                    except Rejected as rejected:
                        refused.append((plan, rejected))
                        continue
                    record = await writer.load(table, plan.record_id)
                    outcome.append((plan, record.seq if record is not None else 0))
                if dry_run:
                    raise _DryRun
                # Progress in rows of the file: up to this batch's last row.
                done = min(batch[-1].number - 1, report.rows)
                await _log_batch(import_id, table, outcome, report, refused, done)
        except _DryRun:
            # A member that fails does not wait for its group's commit; the next batch
            # would join the same group, and the phones' writes in it would wait for the
            # whole dry run. An empty member waits for that commit, so the group ends here.
            async with db.write_transaction():
                pass
        for plan, refusal in refused:
            found = _FIELD_IN_DETAIL.search(refusal.detail)
            column = plan.columns.get(found[1], found[1]) if found else ""
            report.error(plan.number, column, refusal.error, refusal.detail)
        for plan, _ in outcome:
            if plan.action == "create":
                report.created += 1
            else:
                report.updated += 1


async def _log_batch(
    import_id: str | None,
    table: str,
    outcome: list[tuple[Planned, int]],
    report: Report,
    refused: list[tuple[Planned, Rejected]],
    done: int,
) -> None:
    if import_id is None:
        return
    await db.insert_rows(
        "import_items",
        ("import_id", "record_id", "action", "fields", "seq", "geocode"),
        [
            (
                import_id,
                plan.record_id,
                "created" if plan.action == "create" else "updated",
                _json.encode(sorted(plan.fields)).decode(),
                seq,
                plan.geocode,
            )
            for plan, seq in outcome
        ],
    )
    created = sum(1 for plan, _ in outcome if plan.action == "create")
    await db.fetch(
        "UPDATE imports SET written = {}, created = created + {}, updated = updated + {}"
        " WHERE id = {}",
        done,
        created,
        len(outcome) - created,
        import_id,
    )


async def _start(
    actor: Actor, table: str, import_id: str | None, rows: int, team_id: str | None
) -> str:
    try:
        import_id = str(uuid.UUID(import_id)) if import_id else str(uuid.uuid4())
    except ValueError:
        raise ApiError(400, "malformed", "import_id must be a UUID.") from None
    async with db.transaction():
        if await db.fetch("SELECT id FROM imports WHERE id = {}", import_id):
            raise ApiError(409, "exists", "An import with this id exists already.")
        await db.fetch(
            "INSERT INTO imports (id, record_table, user_id, team_id, state, rows, written,"
            " created, updated, duplicates, report, reverted, created_at)"
            " VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            import_id,
            table,
            actor.user_id or None,
            team_id or actor.team_id or None,
            "running",
            rows,
            0,
            0,
            0,
            0,
            "{}",
            "{}",
            datetime.now(UTC),
        )
    return import_id


async def _finish(import_id: str, state: str, report: Report) -> None:
    saved = {
        "errors": report.errors,
        "error_count": report.error_count,
        "unknown_columns": report.unknown_columns,
        "ignored_columns": report.ignored_columns,
        "encoding": report.encoding,
    }
    await db.fetch(
        "UPDATE imports SET state = {}, written = rows, duplicates = {}, created = {},"
        " updated = {}, report = {}, finished_at = {} WHERE id = {}",
        state,
        report.duplicates,
        report.created,
        report.updated,
        _json.encode(saved).decode(),
        datetime.now(UTC),
        import_id,
    )
