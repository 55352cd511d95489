"""The fields of each record table: their types, limits, who may write them, and how a
value is checked and turned into what the database keeps. One description serves the
sync endpoint and the REST endpoints, so both accept exactly the same writes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sync.protocol import Rejected, canonical_uuid

CLIENT, MANAGER, SERVER = "client", "manager", "server"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str  # text | enum | float | int | datetime | date | bool | uuid | json
    required: bool = False
    max_len: int = 0
    choices: tuple[str, ...] = ()
    low: float = -math.inf
    high: float = math.inf
    writer: str = CLIENT  # who may write it: client (anyone in scope), manager, server
    default: Any = None
    pattern: str = ""  # text: a regular expression the whole value must match
    what: str = ""  # text with a pattern: what a value must be, for the refusal's sentence


def _text(name: str, max_len: int, required: bool = False) -> FieldSpec:
    return FieldSpec(name, "text", required=required, max_len=max_len)


def _ref(name: str, required: bool = False, writer: str = CLIENT) -> FieldSpec:
    return FieldSpec(name, "uuid", required=required, writer=writer)


ACCOUNT_STATUSES = ("prospect", "customer", "inactive")
VISIT_OUTCOMES = ("met", "no_answer", "follow_up", "won", "lost")
VERIFICATIONS = ("verified", "out_of_range", "low_accuracy", "unverified")
TASK_KINDS = ("todo", "visit")  # v1.1: a `visit` task is a planned visit (SPEC section 14)
DEAL_STAGES = ("lead", "qualified", "proposal", "negotiation", "won", "lost")
# v1.1 attachments (SPEC section 13): the types the server takes, and their largest size.
ATTACHMENT_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "audio/webm",
    "audio/mp4",
    "audio/mpeg",
    "audio/ogg",
)
ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
SHA256_HEX = "[0-9a-f]{64}"
SHA256 = re.compile(SHA256_HEX)  # a blob's name (server/blobs.py)
# An attachment hangs off at least one of these; its account is the visit's or the note's
# when it names none (server/core/rules.py).
ATTACHMENT_PARENTS = ("visit_id", "note_id", "account_id")
NAME, BODY = 200, 20_000

TABLE_FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "accounts": (
        _text("name", NAME, required=True),
        FieldSpec("status", "enum", choices=ACCOUNT_STATUSES, default="prospect"),
        _text("phone", 50),
        _text("email", 254),
        _text("website", 500),
        _text("street", 200),
        _text("city", 100),
        _text("region", 100),
        _text("postal_code", 20),
        _text("country", 100),
        FieldSpec("lat", "float", low=-90, high=90),
        FieldSpec("lng", "float", low=-180, high=180),
        _ref("owner_id"),
        _ref("team_id", writer=MANAGER),
        FieldSpec("geo_precision", "text", max_len=20, writer=SERVER),
        # v1.1: who created it, and the latest `started_at` of its live visits.
        _ref("created_by", writer=SERVER),
        FieldSpec("last_visit_at", "datetime", writer=SERVER),
        # v1.1: the phone in E.164 when it parses (server/core/phones.py).
        FieldSpec("phone_e164", "text", max_len=20, writer=SERVER),
    ),
    "contacts": (
        _ref("account_id", required=True),
        _text("name", NAME, required=True),
        _text("title", 200),
        _text("phone", 50),
        _text("email", 254),
    ),
    "visits": (
        _ref("account_id", required=True),
        FieldSpec("started_at", "datetime", required=True),
        FieldSpec("ended_at", "datetime"),
        FieldSpec("lat", "float", low=-90, high=90),
        FieldSpec("lng", "float", low=-180, high=180),
        FieldSpec("accuracy_m", "float", low=0, high=1e7),
        FieldSpec("outcome", "enum", choices=VISIT_OUTCOMES),
        _text("summary", BODY),
        _ref("user_id", writer=SERVER),
        FieldSpec("distance_m", "float", writer=SERVER),
        FieldSpec(
            "verification", "enum", choices=VERIFICATIONS, writer=SERVER, default="unverified"
        ),
    ),
    "notes": (
        _ref("account_id", required=True),
        _text("body", BODY, required=True),
        _ref("visit_id"),
        _ref("author_id", writer=SERVER),
    ),
    "tasks": (
        _text("title", NAME, required=True),
        _ref("account_id"),
        FieldSpec("due_at", "datetime"),
        FieldSpec("remind_at", "datetime"),
        FieldSpec("done", "bool", default=False),
        _ref("assignee_id"),
        _ref("author_id", writer=SERVER),
        FieldSpec("reminded_at", "datetime", writer=SERVER),
        # v1.1: when `done` last became true (the write's clock); null while not done.
        FieldSpec("done_at", "datetime", writer=SERVER),
        FieldSpec("kind", "enum", choices=TASK_KINDS, default="todo"),
    ),
    "deals": (
        _ref("account_id", required=True),
        _text("title", NAME, required=True),
        FieldSpec("stage", "enum", choices=DEAL_STAGES, default="lead"),
        FieldSpec("amount", "float", low=-1e15, high=1e15),
        FieldSpec("currency", "text", max_len=3),
        FieldSpec("close_date", "date"),
        _ref("owner_id"),
        # v1.1: when `stage` last changed (the write's clock; on create, the create's).
        FieldSpec("stage_changed_at", "datetime", writer=SERVER),
    ),
    "conflicts": (
        FieldSpec("table", "text", writer=SERVER),
        _ref("record_id", writer=SERVER),
        FieldSpec("field", "text", writer=SERVER),
        FieldSpec("kept_value", "json", writer=SERVER),
        FieldSpec("lost_value", "json", writer=SERVER),
        FieldSpec("kept_hlc", "json", writer=SERVER),
        FieldSpec("lost_hlc", "json", writer=SERVER),
        _ref("kept_by", writer=SERVER),
        _ref("lost_by", writer=SERVER),
        FieldSpec("resolved", "bool", default=False),
        # v1.1: the account the record hangs off, so a conflict can say what it is about.
        _ref("account_id", writer=SERVER),
    ),
    # v1.1 (SPEC 4 rule 12): a phone's write the server refused, kept whole.
    "rejections": (
        FieldSpec("table", "text", writer=SERVER),
        FieldSpec("record_id", "text", writer=SERVER),
        FieldSpec("op", "text", writer=SERVER),
        FieldSpec("fields", "json", writer=SERVER),
        FieldSpec("error", "text", writer=SERVER),
        FieldSpec("detail", "text", writer=SERVER),
        _ref("user_id", writer=SERVER),
        FieldSpec("client_id", "text", writer=SERVER),
        FieldSpec("mid", "float", writer=SERVER),
        _ref("account_id", writer=SERVER),
        FieldSpec("resolved", "bool", default=False),
    ),
    # v1.1 (SPEC section 13): a photo or a voice note; its bytes are uploaded apart
    # (server/attachments/), named by their SHA-256. What the bytes are never changes.
    "attachments": (
        FieldSpec(
            "sha256",
            "text",
            required=True,
            max_len=64,
            pattern=SHA256_HEX,
            what="the SHA-256 of the bytes, as 64 lowercase hex digits",
        ),
        FieldSpec("media_type", "enum", required=True, choices=ATTACHMENT_TYPES),
        FieldSpec("bytes", "int", required=True, low=1, high=ATTACHMENT_MAX_BYTES),
        _ref("visit_id"),
        _ref("note_id"),
        _ref("account_id"),
        _text("caption", 1000),
        FieldSpec("captured_at", "datetime"),
        FieldSpec("lat", "float", low=-90, high=90),
        FieldSpec("lng", "float", low=-180, high=180),
        _ref("author_id", writer=SERVER),
        FieldSpec("uploaded", "bool", writer=SERVER, default=False),
    ),
}
# Fields of a record that are fixed once it is made (a write may repeat their value).
FIXED = {"attachments": ("sha256", "media_type", "bytes")}
# Tables whose rows the server makes; clients only mark them resolved.
SERVER_MADE = ("conflicts", "rejections")

SPECS: dict[str, dict[str, FieldSpec]] = {
    table: {spec.name: spec for spec in specs} for table, specs in TABLE_FIELDS.items()
}
TABLES = frozenset(TABLE_FIELDS)
CHILD_TABLES = ("contacts", "visits", "notes", "tasks", "deals", "attachments")
# v1.1 (SPEC section 9): the tables whose records may be merged into another.
MERGEABLE = ("accounts", "contacts")
# Database column names where they differ from the wire's.
DB_COLUMN = {("conflicts", "table"): "record_table", ("rejections", "table"): "record_table"}


def db_column(table: str, name: str) -> str:
    return DB_COLUMN.get((table, name), name)


def parse_value(spec: FieldSpec, value: Any) -> Any:
    """The value the database keeps for a wire value, or raise ValueError saying why."""
    if value is None:
        if spec.required:
            raise ValueError("is required and cannot be null")
        if spec.default is not None:
            # The column is NOT NULL: leaving the field out keeps its default.
            raise ValueError(f"cannot be null (leave it out for {spec.default!r})")
        return None
    kind = spec.kind
    if kind == "text":
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if spec.max_len and len(value) > spec.max_len:
            raise ValueError(f"must be at most {spec.max_len} characters")
        if spec.required and not value.strip():
            raise ValueError("cannot be empty")
        if "\x00" in value:
            raise ValueError("cannot contain NUL characters")
        if spec.pattern and not re.fullmatch(spec.pattern, value):
            raise ValueError(f"must be {spec.what or 'of the form ' + spec.pattern}")
        return value
    if kind == "enum":
        if value not in spec.choices:
            raise ValueError(f"must be one of {', '.join(spec.choices)}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        number = float(value)
        if not math.isfinite(number) or not spec.low <= number <= spec.high:
            raise ValueError(f"must be between {spec.low:g} and {spec.high:g}")
        return number
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 2.0: JSON does not tell whole numbers apart
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number")
        if not spec.low <= value <= spec.high:
            raise ValueError(f"must be between {spec.low:g} and {spec.high:g}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if kind == "uuid":
        if not isinstance(value, str):
            raise ValueError("must be a UUID string")
        try:
            return canonical_uuid(value)
        except ValueError:
            raise ValueError("must be a UUID") from None
    if kind == "datetime":
        return parse_datetime(value)
    if kind == "date":
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError("must be a date, YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError("must be a date, YYYY-MM-DD") from None
    raise ValueError("cannot be written")


def parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("must be an ISO 8601 date and time with an offset")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO 8601 date and time with an offset") from None
    if parsed.tzinfo is None:
        raise ValueError("must carry a UTC offset, e.g. 2024-05-01T09:30:00+02:00")
    if not 1900 <= parsed.year <= 2999:
        raise ValueError("must be a year between 1900 and 2999")
    return parsed.astimezone(UTC)


def clean_fields(
    table: str,
    fields: Any,
    *,
    creating: bool,
    may_write_manager_fields: bool,
    may_write_server_fields: bool = False,
) -> dict[str, Any]:
    """Check a write's fields against the table and turn them into database values.
    Server-kept fields are written by the server's own jobs only (`may_write_server_fields`).
    Raises Rejected with a message that names the field at fault."""
    if not isinstance(fields, dict):
        raise Rejected("invalid", "fields must be an object")
    specs = SPECS[table]
    cleaned: dict[str, Any] = {}
    for name, value in fields.items():
        spec = specs.get(name)
        if spec is None:
            raise Rejected("unknown_field", f"{table} has no field {str(name)[:50]!r}.")
        if (spec.writer == SERVER and not may_write_server_fields) or (
            spec.writer == MANAGER and not may_write_manager_fields
        ):
            raise Rejected("read_only", f"{table}.{name} is kept by the server.")
        try:
            cleaned[name] = parse_value(spec, value)
        except ValueError as exc:
            raise Rejected("invalid", f"{table}.{name} {exc}.") from None
    if creating:
        missing = [s.name for s in specs.values() if s.required and cleaned.get(s.name) is None]
        if missing:
            raise Rejected("required", f"{table} needs {', '.join(missing)}.")
    return cleaned


def defaults(table: str) -> dict[str, Any]:
    """Every field of a table at its default value, for a new record."""
    return {spec.name: spec.default for spec in TABLE_FIELDS[table]}
