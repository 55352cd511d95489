"""The reminder message and the dispatcher's small pieces, without a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from server.core.fields import NAME
from server.push.dispatcher import RoundReport, _as_datetime, reminder_payload
from server.push.sender import MAX_PAYLOAD_BYTES
from sync.engine import StoredRecord

TASK_ID = "6f1c0c44-3f0e-4a4e-9a55-1f7f0d6b0e11"
ACCOUNT_ID = "0d5f4a4e-8c1b-4f7e-b0b5-2d5f8e6f9a01"


def task(**values: object) -> StoredRecord:
    base = {"title": "Call back", "account_id": None, "due_at": None, "remind_at": None,
            "done": False, "assignee_id": None, "author_id": None, "reminded_at": None}  # fmt: skip
    return StoredRecord("tasks", TASK_ID, {**base, **values}, {}, False, 1, "user:x")


def test_a_reminder_names_the_task_its_account_and_where_to_open_it() -> None:
    due = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)

    payload = reminder_payload(
        task(title="Bring samples", account_id=ACCOUNT_ID, due_at=due),
        {ACCOUNT_ID: "Boulangerie Martin"},
    )

    assert payload == {
        "type": "task_reminder",
        "task_id": TASK_ID,
        "title": "Bring samples",
        "account_id": ACCOUNT_ID,
        "account_name": "Boulangerie Martin",
        "due_at": "2026-11-24T09:30:00Z",
        "url": f"/#/task/{TASK_ID}/edit",
    }


def test_a_task_without_account_or_due_date_has_nulls_there() -> None:
    payload = reminder_payload(task(), {})

    assert (payload["account_id"], payload["account_name"], payload["due_at"]) == (None, None, None)


def test_due_at_is_sent_in_utc_whatever_zone_it_came_in() -> None:
    due = datetime(2026, 11, 24, 10, 30, tzinfo=timezone(timedelta(hours=1)))

    assert reminder_payload(task(due_at=due), {})["due_at"] == "2026-11-24T09:30:00Z"


def test_the_longest_title_and_account_name_fit_in_one_push_message() -> None:
    # Four UTF-8 bytes a character, at the field limits: still far under the 4 KiB message.
    widest = "\U0001f600" * NAME
    payload = reminder_payload(
        task(title=widest, account_id=ACCOUNT_ID, due_at=datetime.now(UTC)), {ACCOUNT_ID: widest}
    )

    size = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    assert size < MAX_PAYLOAD_BYTES


def test_timestamps_from_either_engine_read_the_same() -> None:
    expected = datetime(2026, 11, 23, 19, 34, 29, 544894, tzinfo=UTC)

    assert _as_datetime("2026-11-23 19:34:29.544894+00:00") == expected  # SQLite's text
    assert _as_datetime(expected) == expected  # asyncpg
    assert _as_datetime(expected.replace(tzinfo=None)) == expected
    assert _as_datetime("2026-11-23 19:34:29+00:00") == expected.replace(microsecond=0)
    assert _as_datetime(None) is None


def test_round_reports_add_up() -> None:
    total = RoundReport()
    total.add(RoundReport(scheduled=2, delivered=1, details=["a"]))
    total.add(RoundReport(delivered=1, failed=1, details=["b"]))

    assert (total.scheduled, total.delivered, total.failed, total.details) == (2, 2, 1, ["a", "b"])
    assert total.busy
    assert not RoundReport().busy
