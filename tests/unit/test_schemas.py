"""The record field specs: how each kind of value is checked, and that the specs agree with
the tables they describe."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime

import pytest

from server.core import tables
from server.core.fields import (
    BODY,
    CHILD_TABLES,
    NAME,
    SPECS,
    TABLE_FIELDS,
    FieldSpec,
    clean_fields,
    db_column,
    defaults,
    parse_datetime,
    parse_value,
)
from sync.protocol import Rejected

TABLE_CLASSES = {
    "accounts": tables.Account,
    "contacts": tables.Contact,
    "visits": tables.Visit,
    "notes": tables.Note,
    "tasks": tables.Task,
    "deals": tables.Deal,
    "conflicts": tables.Conflict,
    "rejections": tables.Rejection,
    "attachments": tables.Attachment,
}


def spec(table: str, name: str) -> FieldSpec:
    return SPECS[table][name]


# -- the specs against the tables ---------------------------------------------------------


def test_every_table_has_a_spec_and_a_class() -> None:
    assert set(TABLE_FIELDS) == set(TABLE_CLASSES)
    assert set(CHILD_TABLES) < set(TABLE_FIELDS)


@pytest.mark.parametrize("table", list(TABLE_FIELDS))
def test_every_field_has_a_column(table: str) -> None:
    columns = {c._meta.db_column_name for c in TABLE_CLASSES[table]._meta.columns}
    missing = {name for name in SPECS[table] if db_column(table, name) not in columns}
    assert not missing


@pytest.mark.parametrize("table", list(TABLE_FIELDS))
def test_a_not_null_column_is_required_or_has_a_default(table: str) -> None:
    """Otherwise a client's explicit null reaches the database and fails there (a 500)."""
    columns = {c._meta.db_column_name: c for c in TABLE_CLASSES[table]._meta.columns}
    for name, field in SPECS[table].items():
        column = columns[db_column(table, name)]
        if column._meta.null or field.writer == "server":
            continue
        assert field.required or field.default is not None, f"{table}.{name}"
        with pytest.raises(ValueError, match="null"):
            parse_value(field, None)


@pytest.mark.parametrize("table", list(TABLE_FIELDS))
def test_text_limits_fit_the_columns(table: str) -> None:
    columns = {c._meta.db_column_name: c for c in TABLE_CLASSES[table]._meta.columns}
    for name, field in SPECS[table].items():
        length = getattr(columns[db_column(table, name)], "length", None)
        if field.kind == "text" and field.writer != "server" and length is not None:
            assert 0 < field.max_len <= length, f"{table}.{name}"


def test_the_contract_limits() -> None:
    assert (NAME, BODY) == (200, 20_000)
    for table, name, limit in (
        ("accounts", "name", NAME),
        ("contacts", "name", NAME),
        ("tasks", "title", NAME),
        ("deals", "title", NAME),
        ("notes", "body", BODY),
        ("visits", "summary", BODY),
    ):
        assert spec(table, name).max_len == limit
    assert (spec("accounts", "lat").low, spec("accounts", "lat").high) == (-90, 90)
    assert (spec("visits", "lng").low, spec("visits", "lng").high) == (-180, 180)


def test_defaults() -> None:
    assert defaults("accounts")["status"] == "prospect"
    assert defaults("deals")["stage"] == "lead"
    assert defaults("tasks")["done"] is False
    assert defaults("visits")["verification"] == "unverified"
    assert set(defaults("contacts")) == set(SPECS["contacts"])


# -- values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "name", "value", "expected"),
    [
        ("accounts", "name", "Dupont", "Dupont"),
        ("accounts", "name", "x" * NAME, "x" * NAME),
        ("accounts", "status", "customer", "customer"),
        ("accounts", "lat", 90, 90.0),
        ("accounts", "lng", -180.0, -180.0),
        ("accounts", "phone", None, None),
        ("notes", "body", "y" * BODY, "y" * BODY),
        ("tasks", "done", True, True),
        ("deals", "close_date", "2026-02-28", date(2026, 2, 28)),
        ("deals", "amount", 10**15, 1e15),
        (
            "contacts",
            "account_id",
            "123E4567-E89B-12D3-A456-426614174000",
            "123e4567-e89b-12d3-a456-426614174000",
        ),
        (
            "visits",
            "started_at",
            "2026-05-01T09:30:00+02:00",
            datetime(2026, 5, 1, 7, 30, tzinfo=UTC),
        ),
        ("visits", "started_at", "2026-05-01T07:30:00Z", datetime(2026, 5, 1, 7, 30, tzinfo=UTC)),
        ("attachments", "sha256", "0f" * 32, "0f" * 32),
        ("attachments", "media_type", "audio/webm", "audio/webm"),
        ("attachments", "bytes", 1, 1),
        ("attachments", "bytes", 10 * 2**20, 10 * 2**20),
        ("attachments", "bytes", 2048.0, 2048),
    ],
)
def test_good_values(table: str, name: str, value: object, expected: object) -> None:
    parsed = parse_value(spec(table, name), value)
    assert parsed == expected and type(parsed) is type(expected)


@pytest.mark.parametrize(
    ("table", "name", "value", "message"),
    [
        ("accounts", "name", None, "required"),
        ("accounts", "name", "", "empty"),
        ("accounts", "name", "  ", "empty"),
        ("accounts", "name", "x" * (NAME + 1), "at most 200"),
        ("accounts", "name", 5, "string"),
        ("accounts", "name", "a\x00b", "NUL"),
        ("notes", "body", "y" * (BODY + 1), "at most 20000"),
        ("accounts", "status", "won", "one of"),
        ("accounts", "status", None, "null"),
        ("deals", "stage", None, "null"),
        ("tasks", "done", None, "null"),
        ("accounts", "lat", 90.0001, "between"),
        ("accounts", "lat", 91, "between"),
        ("accounts", "lng", 181, "between"),
        ("accounts", "lng", -180.5, "between"),
        ("accounts", "lat", math.inf, "between"),
        ("accounts", "lat", math.nan, "between"),
        ("accounts", "lat", True, "number"),
        ("accounts", "lat", "45.0", "number"),
        ("visits", "accuracy_m", -1, "between"),
        ("tasks", "done", 1, "true or false"),
        ("tasks", "done", "true", "true or false"),
        ("contacts", "account_id", "nope", "UUID"),
        ("contacts", "account_id", 12, "UUID"),
        ("deals", "close_date", "2026-02-30", "YYYY-MM-DD"),
        ("deals", "close_date", "2026-2-3", "YYYY-MM-DD"),
        ("deals", "close_date", 20260203, "YYYY-MM-DD"),
        ("visits", "started_at", "2026-05-01T09:30:00", "offset"),
        ("visits", "started_at", "2026-05-01", "offset"),
        ("visits", "started_at", "now", "ISO 8601"),
        ("visits", "started_at", 1714550400, "ISO 8601"),
        ("visits", "started_at", "1850-01-01T00:00:00Z", "1900"),
        ("visits", "started_at", "3000-01-01T00:00:00Z", "2999"),
        ("visits", "started_at", "2026-05-01T09:30:00+02:00" + " " * 40, "ISO 8601"),
        ("attachments", "sha256", "0F" * 32, "64 lowercase hex"),
        ("attachments", "sha256", "0f" * 31, "64 lowercase hex"),
        ("attachments", "sha256", "zz" * 32, "64 lowercase hex"),
        ("attachments", "sha256", None, "required"),
        ("attachments", "media_type", "image/gif", "one of"),
        ("attachments", "media_type", "audio/webm;codecs=opus", "one of"),
        ("attachments", "bytes", 0, "between"),
        ("attachments", "bytes", 10 * 2**20 + 1, "between"),
        ("attachments", "bytes", 1.5, "whole number"),
        ("attachments", "bytes", True, "whole number"),
        ("attachments", "bytes", "12", "whole number"),
        ("attachments", "bytes", math.nan, "whole number"),
        ("attachments", "uploaded", None, "null"),
    ],
)
def test_bad_values_say_why(table: str, name: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_value(spec(table, name), value)


def test_parse_datetime_keeps_the_instant() -> None:
    assert parse_datetime("2026-05-01T23:30:00-05:00") == datetime(2026, 5, 2, 4, 30, tzinfo=UTC)
    assert parse_datetime("2026-05-01T07:30:00.123456z").microsecond == 123456


# -- whole writes -----------------------------------------------------------------------


def clean(table: str, fields: object, *, creating: bool = True, manager: bool = False) -> dict:
    return clean_fields(table, fields, creating=creating, may_write_manager_fields=manager)


def rejected(table: str, fields: object, **kwargs: bool) -> Rejected:
    with pytest.raises(Rejected) as info:
        clean(table, fields, **kwargs)
    return info.value


def test_clean_fields_converts_a_good_write() -> None:
    account_id = str(uuid.uuid4())
    values = clean(
        "visits",
        {
            "account_id": account_id,
            "started_at": "2026-05-01T09:30:00Z",
            "lat": 45,
            "outcome": "met",
        },
    )
    assert values == {
        "account_id": account_id,
        "started_at": datetime(2026, 5, 1, 9, 30, tzinfo=UTC),
        "lat": 45.0,
        "outcome": "met",
    }


def test_required_fields_are_needed_on_create_only() -> None:
    error = rejected("deals", {"title": "Order"})
    assert error.error == "required" and "account_id" in error.detail
    assert clean("deals", {"title": "Order"}, creating=False) == {"title": "Order"}
    assert rejected("deals", {"title": None}, creating=False).error == "invalid"


def test_unknown_and_server_fields_are_refused_by_name() -> None:
    error = rejected("accounts", {"name": "x", "colour": "red"})
    assert error.error == "unknown_field" and "colour" in error.detail
    error = rejected("visits", {"verification": "verified"}, creating=False)
    assert error.error == "read_only" and "visits.verification" in error.detail
    assert rejected("accounts", {"id": str(uuid.uuid4())}, creating=False).error == "unknown_field"
    long_name = "k" * 10_000
    assert len(rejected("accounts", {long_name: 1}).detail) < 200


def test_team_id_is_for_managers() -> None:
    team = str(uuid.uuid4())
    assert rejected("accounts", {"name": "x", "team_id": team}).error == "read_only"
    assert clean("accounts", {"name": "x", "team_id": team}, manager=True)["team_id"] == team


def test_a_bad_value_names_its_field() -> None:
    error = rejected("contacts", {"email": 5}, creating=False)
    assert error.error == "invalid" and error.detail.startswith("contacts.email ")


@pytest.mark.parametrize("fields", [[], "x", None, 5])
def test_fields_must_be_an_object(fields: object) -> None:
    assert rejected("accounts", fields).error == "invalid"
