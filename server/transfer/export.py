"""Export (SPEC section 8): every row the caller sees of a record table as CSV, and the
contacts as vCard 4.0.

Both stream: rows are read a page at a time in the order of their ids (keyset paging, no
OFFSET), so memory stays bounded whatever the table's size. Each page is read as it is
when it is read (no snapshot over the whole export: a 100,000-row export would otherwise
hold a read transaction for seconds); every row the caller sees appears once.

CSV: UTF-8 with a header row, one column per field as the API names it (`id`, the table's
fields, `created_at`, `updated_at`), RFC 4180 quoting, CRLF line ends. A text cell that a
spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage
return) is written with a leading apostrophe, as OWASP advises; the import takes that
apostrophe off again, so an export re-imports unchanged.

vCard 4.0 (RFC 6350), one card per contact: UID (the record id, as `urn:uuid:`), FN, ORG
(the account's name), TITLE, TEL, EMAIL, REV. Text values escaped (backslash, comma,
semicolon, newline), lines folded at 75 octets without splitting a character, CRLF.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime
from typing import Any

from server import db
from server.core.actor import Actor, scope_filter
from server.core.fields import SPECS, db_column
from server.core.rows import normalize

EXPORTED = ("accounts", "contacts", "visits", "notes", "tasks", "deals")
PAGE = 1_000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def columns(table: str) -> list[str]:
    """The export's columns for `table`: the id, the fields, the server's timestamps."""
    return ["id", *SPECS[table], "created_at", "updated_at"]


def cell(value: Any) -> str:
    """A value as a CSV cell: empty for null, ISO 8601 for dates, `true`/`false`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return str(normalize(value).isoformat())
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text  # never a formula in a spreadsheet; the import strips it
    return text


async def pages(actor: Actor, table: str, select: str) -> AsyncIterator[list[dict[str, Any]]]:
    """The live rows of `table` the caller sees, `PAGE` at a time, by id."""
    where = "deleted = {}"
    args: list[Any] = [False]
    if actor.scopes is not None:
        scope_sql, scope_args = scope_filter(actor.scopes)
        where += f" AND {scope_sql}"
        args += scope_args
    after: str | None = None
    while True:
        page_where, page_args = where, list[Any](args)
        if after is not None:
            page_where += " AND id > {}"
            page_args.append(after)
        rows = await db.fetch(
            f"SELECT {select} FROM {table} WHERE {page_where} ORDER BY id LIMIT {PAGE}",
            *page_args,
        )
        if not rows:
            return
        yield rows
        if len(rows) < PAGE:
            return
        after = str(rows[-1]["id"])


def _csv_line(values: Iterable[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(list(values))
    return buffer.getvalue().encode()


async def csv_export(actor: Actor, table: str) -> AsyncIterator[bytes]:
    """The table as CSV, a page of rows per chunk."""
    names = columns(table)
    select = ", ".join(
        f"{db_column(table, n)} AS {n}" if db_column(table, n) != n else n for n in names
    )
    yield _csv_line(names)
    async for rows in pages(actor, table, select):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerows([cell(row[name]) for name in names] for row in rows)
        yield buffer.getvalue().encode()


# -- vCard 4.0 ------------------------------------------------------------------------


def escape_text(value: str) -> str:
    """RFC 6350 3.4: backslash, comma, semicolon and newlines escaped in a text value."""
    return (
        value.replace("\\", "\\\\")
        .replace(",", "\\,")
        .replace(";", "\\;")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> bytes:
    """RFC 6350 3.2: a content line cut into lines of at most 75 octets (a character is
    never split), each continuation starting with a space; ends with CRLF."""
    out = bytearray()
    width = 0
    limit = 75
    for char in line:
        encoded = char.encode()
        if width + len(encoded) > limit:
            out += b"\r\n "
            width = 1
        out += encoded
        width += len(encoded)
    return bytes(out) + b"\r\n"


def card(contact: dict[str, Any], organisation: str | None) -> bytes:
    lines = ["BEGIN:VCARD", "VERSION:4.0", f"UID:urn:uuid:{contact['id']}"]
    lines.append(f"FN:{escape_text(contact['name'] or '')}")
    if organisation:
        lines.append(f"ORG:{escape_text(organisation)}")
    if contact.get("title"):
        lines.append(f"TITLE:{escape_text(contact['title'])}")
    if contact.get("phone"):
        lines.append(f"TEL;VALUE=text:{escape_text(contact['phone'])}")
    if contact.get("email"):
        lines.append(f"EMAIL:{escape_text(contact['email'])}")
    updated = contact.get("updated_at")
    if isinstance(updated, datetime):
        lines.append(f"REV:{normalize(updated).strftime('%Y%m%dT%H%M%SZ')}")
    lines.append("END:VCARD")
    return b"".join(fold(line) for line in lines)


async def vcard_export(actor: Actor) -> AsyncIterator[bytes]:
    """The contacts the caller sees as vCard 4.0, a page of cards per chunk."""
    select = "id, account_id, name, title, phone, email, updated_at"
    async for rows in pages(actor, "contacts", select):
        account_ids = sorted({str(row["account_id"]) for row in rows})
        where, args = db.any_of("id", account_ids)
        names = {
            str(r["id"]): r["name"]
            for r in await db.fetch(f"SELECT id, name FROM accounts WHERE {where}", *args)
        }
        yield b"".join(card(row, names.get(str(row["account_id"]))) for row in rows)
