"""The reminder dispatcher end to end, on both engines: tasks and subscriptions made through
the API, one round run directly, and the messages read back from the local push service,
which checks the VAPID signature and decrypts each one as a browser would."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from server import db
from server.core.actor import Actor
from server.push import dispatcher, services
from server.push.dispatcher import MAX_ATTEMPTS, dispatch_round, schedule_due, send_due
from server.push.endpoints import parse_allowed_hosts
from server.push.services import vapid_key
from server.settings import Settings
from tests.conftest import Database
from tests.factories import Login, login_as, make_account, make_record
from tests.support.network import Connections, guard_connections
from tests.support.push_service import PushService, Subscription


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> Connections:
    """Nothing leaves this machine; the connections made are noted."""
    return guard_connections(monkeypatch)


@pytest.fixture
def push_service():
    with PushService() as service:
        yield service
        assert not service.errors


@pytest.fixture
def settings(database: Database, push_service: PushService) -> Settings:
    """The local push service is allowed as a whole origin (scheme, address and port)."""
    return Settings(
        database=database.config, push_allowed_hosts=push_service.origin, dispatch_interval_s=0.05
    )


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def ago(seconds: float = 1.0) -> str:
    return iso(datetime.now(UTC) - timedelta(seconds=seconds))


async def subscribe(client: Any, who: Login, service: PushService) -> Subscription:
    subscription = service.new_subscription()
    response = await client.post(
        "/api/push/subscriptions", json=subscription.info, headers=who.headers
    )
    assert response.status_code == 201, response.text
    return subscription


async def patch_task(client: Any, who: Login, task_id: str, **fields: Any) -> dict[str, Any]:
    response = await client.patch(f"/api/tasks/{task_id}", json=fields, headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def pending_deliveries() -> list[dict[str, Any]]:
    return await db.fetch("SELECT * FROM push_deliveries")


async def test_a_due_reminder_arrives_once_with_its_payload(client, settings, push_service):
    alice = await login_as(client)
    subscription = await subscribe(client, alice, push_service)
    account = await make_account(client, alice, name="Boulangerie Dupont")
    due_at = iso(datetime.now(UTC) + timedelta(hours=1))
    task = await make_record(
        client, alice, "tasks", title="Call about the oven", account_id=account["id"],
        due_at=due_at, remind_at=ago(),
    )  # fmt: skip

    first = await dispatch_round(settings)
    second = await dispatch_round(settings)

    assert (first.reminded, first.delivered, second.reminded, second.delivered) == (1, 1, 0, 0)
    [message] = subscription.messages
    assert message.payload == {
        "type": "task_reminder",
        "task_id": task["id"],
        "title": "Call about the oven",
        "account_id": account["id"],
        "account_name": "Boulangerie Dupont",
        "due_at": task["due_at"],
        "url": f"/#/task/{task['id']}/edit",
    }
    # Signed with the key the browser subscribed with, and the server's own contact.
    assert message.vapid_key == (await vapid_key()).public_key_b64url
    assert message.claims["sub"] == settings.push_subject
    assert message.ttl > 0
    assert push_service.rejections == []
    assert await pending_deliveries() == []


async def test_reminded_at_reaches_the_assignees_devices_through_sync(
    client, settings, push_service
):
    alice = await login_as(client)
    await subscribe(client, alice, push_service)
    task = await make_record(client, alice, "tasks", title="Quote", remind_at=ago())
    client_id = str(uuid.uuid4())
    first = await client.post(
        "/api/sync/v1",
        json={"protocol": 1, "client_id": client_id, "cursor": None, "mutations": []},
        headers=alice.headers,
    )
    cursor = first.json()["cursor"]

    await dispatch_round(settings)
    pulled = await client.post(
        "/api/sync/v1",
        json={"protocol": 1, "client_id": client_id, "cursor": cursor, "mutations": []},
        headers=alice.headers,
    )

    assert pulled.status_code == 200, pulled.text
    [change] = [c for c in pulled.json()["changes"] if c["id"] == task["id"]]
    assert change["op"] == "put"
    reminded_at = datetime.fromisoformat(change["row"]["reminded_at"].replace("Z", "+00:00"))
    assert reminded_at >= datetime.fromisoformat(task["remind_at"].replace("Z", "+00:00"))
    stored = (await client.get(f"/api/tasks/{task['id']}", headers=alice.headers)).json()
    assert stored["reminded_at"] == change["row"]["reminded_at"]
    # Its history (issue 19): the dispatcher's write is the reminder's, as the server.
    history = await client.get(f"/api/history/tasks/{task['id']}", headers=alice.headers)
    assert history.status_code == 200, history.text
    entries = history.json()["entries"]
    assert [(e["source"], e["op"]) for e in entries] == [("rest", "create"), ("reminder", "update")]
    assert entries[1]["user_id"] is None and entries[1]["client_id"] == "server"
    assert list(entries[1]["fields"]) == ["reminded_at"]


async def test_every_device_of_the_assignee_and_nobody_else_is_reminded(
    client, settings, push_service
):
    alice = await login_as(client)
    bob = await login_as(client)
    phone, laptop = (
        await subscribe(client, bob, push_service),
        await subscribe(client, bob, push_service),
    )
    alices = await subscribe(client, alice, push_service)
    # Alice writes the task for Bob: it is his reminder.
    task = await make_record(client, alice, "tasks", title="Visit", assignee_id=bob.user_id,
                             remind_at=ago())  # fmt: skip

    report = await dispatch_round(settings)

    assert report.delivered == 2
    assert [m.payload["task_id"] for m in phone.messages + laptop.messages] == [task["id"]] * 2
    assert alices.messages == []


async def test_a_task_not_yet_due_or_without_a_reminder_is_left_alone(
    client, settings, push_service
):
    alice = await login_as(client)
    subscription = await subscribe(client, alice, push_service)
    later = iso(datetime.now(UTC) + timedelta(minutes=10))
    await make_record(client, alice, "tasks", title="Later", remind_at=later)
    await make_record(client, alice, "tasks", title="No reminder")

    report = await dispatch_round(settings)

    assert (report.reminded, subscription.messages) == (0, [])
    due = await dispatch_round(settings, now=datetime.now(UTC) + timedelta(minutes=11))
    assert due.delivered == 1
    assert [m.payload["title"] for m in subscription.messages] == ["Later"]


async def test_a_reminder_with_no_subscription_is_marked_and_not_retried(client, settings):
    alice = await login_as(client)
    task = await make_record(client, alice, "tasks", title="Nobody listens", remind_at=ago())

    first = await dispatch_round(settings)
    second = await dispatch_round(settings)

    assert (first.reminded, first.scheduled, second.reminded) == (1, 0, 0)
    stored = (await client.get(f"/api/tasks/{task['id']}", headers=alice.headers)).json()
    assert stored["reminded_at"] is not None


async def test_a_task_done_before_it_is_due_is_not_sent(client, settings, push_service):
    alice = await login_as(client)
    subscription = await subscribe(client, alice, push_service)
    task = await make_record(client, alice, "tasks", title="Done already", remind_at=ago())
    await patch_task(client, alice, task["id"], done=True)

    report = await dispatch_round(settings)

    assert (report.reminded, subscription.messages) == (0, [])


@pytest.mark.parametrize("change", ["done", "deleted", "moved"])
async def test_a_task_changed_between_queueing_and_sending_is_not_sent(
    client, settings, push_service, change
):
    alice = await login_as(client)
    subscription = await subscribe(client, alice, push_service)
    task = await make_record(client, alice, "tasks", title="Changing", remind_at=ago())
    key = await vapid_key()
    assert (await schedule_due(datetime.now(UTC))).scheduled == 1

    if change == "done":
        await patch_task(client, alice, task["id"], done=True)
    elif change == "deleted":
        response = await client.delete(f"/api/tasks/{task['id']}", headers=alice.headers)
        assert response.status_code == 204, response.text
    else:
        await patch_task(
            client, alice, task["id"], remind_at=iso(datetime.now(UTC) + timedelta(hours=1))
        )
    report = await send_due(settings, key, (push_service.origin,))

    assert (report.skipped, report.delivered, subscription.messages) == (1, 0, [])
    assert await pending_deliveries() == []
    if change == "moved":
        # The new time is reminded when it comes.
        later = await dispatch_round(settings, now=datetime.now(UTC) + timedelta(hours=2))
        assert later.delivered == 1
        assert len(subscription.messages) == 1


async def round_around(
    settings: Settings, when: str, change: Callable[[], Awaitable[object]]
) -> dispatcher.RoundReport:
    """One round with `change` made before anything is queued, or between queueing and
    sending (the check at send time)."""
    if when == "before queueing":
        await change()
        return await dispatch_round(settings)
    report = await schedule_due(datetime.now(UTC))
    assert report.scheduled >= 1
    await change()
    allowed = parse_allowed_hosts(settings.push_allowed_hosts)
    report.add(await send_due(settings, await vapid_key(), allowed))
    return report


async def assert_dropped_for_good(settings: Settings, subscription: Subscription) -> None:
    """Withheld means dropped: nothing is left queued, and later rounds send nothing."""
    assert await pending_deliveries() == []
    later = await dispatch_round(settings, now=datetime.now(UTC) + timedelta(hours=2))
    assert (later.claimed, later.delivered) == (0, 0)
    assert subscription.attempts == 0


WHEN = ["before queueing", "after queueing"]


@pytest.mark.parametrize("when", WHEN)
async def test_a_deactivated_user_gets_no_reminder(client, settings, push_service, when):
    alice = await login_as(client)
    subscription = await subscribe(client, alice, push_service)
    await make_record(client, alice, "tasks", title="Left the company", remind_at=ago())

    async def deactivate() -> None:
        await db.fetch("UPDATE users SET active = {} WHERE id = {}", False, alice.user_id)

    report = await round_around(settings, when, deactivate)

    assert (report.withheld, report.delivered, subscription.messages) == (1, 0, [])
    await assert_dropped_for_good(settings, subscription)


@pytest.mark.parametrize("when", WHEN)
async def test_a_user_moved_to_another_team_is_not_reminded_of_the_old_teams_tasks(
    client, settings, push_service, when
):
    alice = await login_as(client, team="north")
    south = await login_as(client, team="south")
    subscription = await subscribe(client, alice, push_service)
    account = await make_account(client, alice, name="North account")
    await make_record(client, alice, "tasks", title="On the account", account_id=account["id"],
                      remind_at=ago())  # fmt: skip
    await make_record(client, alice, "tasks", title="Her own", remind_at=ago())

    async def move_alice() -> None:
        await db.fetch("UPDATE users SET team_id = {} WHERE id = {}", south.team_id, alice.user_id)

    report = await round_around(settings, when, move_alice)

    # A task on no account is hers wherever she works; the old team's account is not.
    assert (report.withheld, report.delivered) == (1, 1)
    assert [m.payload["title"] for m in subscription.messages] == ["Her own"]
    assert await pending_deliveries() == []


@pytest.mark.parametrize("when", WHEN)
async def test_a_task_whose_account_moved_to_another_team_is_not_reminded(
    client, settings, push_service, when
):
    admin = await login_as(client, role="admin")
    alice = await login_as(client, team="north")
    south = await login_as(client, team="south")
    subscription = await subscribe(client, alice, push_service)
    account = await make_account(client, alice, name="Handed over")
    await make_record(client, alice, "tasks", title="Call them", account_id=account["id"],
                      remind_at=ago())  # fmt: skip

    async def move_account() -> None:
        response = await client.post(
            f"/api/accounts/{account['id']}/reassign",
            json={"team_id": south.team_id},
            headers=admin.headers,
        )
        assert response.status_code == 200, response.text

    report = await round_around(settings, when, move_account)

    assert (report.withheld, report.delivered, subscription.messages) == (1, 0, [])
    await assert_dropped_for_good(settings, subscription)


async def test_a_snoozed_task_is_reminded_again_at_its_new_time(client, settings, push_service):
    alice = await login_as(client)
    subscription = await subscribe(client, alice, push_service)
    task = await make_record(client, alice, "tasks", title="Snoozy", remind_at=ago())
    await dispatch_round(settings)
    assert len(subscription.messages) == 1

    # Snooze 1 h, as the app does: the reminder moves on from now.
    await patch_task(
        client, alice, task["id"], remind_at=iso(datetime.now(UTC) + timedelta(hours=1))
    )
    not_yet = await dispatch_round(settings)
    again = await dispatch_round(settings, now=datetime.now(UTC) + timedelta(hours=1, seconds=1))

    assert (not_yet.reminded, again.reminded, again.delivered) == (0, 1, 1)
    assert [m.payload["task_id"] for m in subscription.messages] == [task["id"]] * 2


async def test_a_subscription_the_push_service_says_is_gone_is_deleted(
    client, settings, push_service
):
    alice = await login_as(client)
    gone = await subscribe(client, alice, push_service)
    kept = await subscribe(client, alice, push_service)
    gone.respond_with(410)
    await make_record(client, alice, "tasks", title="To a dead phone", remind_at=ago())

    report = await dispatch_round(settings)

    assert (report.gone, report.delivered) == (1, 1)
    endpoints = [r["endpoint"] for r in await db.fetch("SELECT endpoint FROM push_subscriptions")]
    assert endpoints == [kept.endpoint]
    assert (gone.attempts, len(kept.messages)) == (1, 1)
    assert await pending_deliveries() == []


async def test_a_404_also_deletes_the_subscription(client, settings, push_service):
    alice = await login_as(client)
    subscription = await subscribe(client, alice, push_service)
    subscription.respond_with(404)
    await make_record(client, alice, "tasks", title="Expired", remind_at=ago())

    report = await dispatch_round(settings)

    assert report.gone == 1
    assert await db.fetch("SELECT id FROM push_subscriptions") == []


async def test_a_server_error_is_retried_after_a_backoff_then_delivered(
    client, settings, push_service
):
    alice = await login_as(client)
    subscription = await subscribe(client, alice, push_service)
    subscription.respond_with(500, times=1)
    await make_record(client, alice, "tasks", title="Flaky", remind_at=ago())

    first = await dispatch_round(settings)
    [queued] = await pending_deliveries()
    too_soon = await dispatch_round(settings)
    later = await dispatch_round(settings, now=datetime.now(UTC) + timedelta(seconds=10))

    assert (first.retrying, first.delivered, too_soon.delivered, later.delivered) == (1, 0, 0, 1)
    assert queued["attempts"] == 1 and "500" in queued["last_error"]
    assert queued["claimed_until"] is None
    assert (subscription.attempts, len(subscription.messages)) == (2, 1)
    assert await pending_deliveries() == []


async def test_retry_after_is_honoured(client, settings, push_service):
    alice = await login_as(client)
    subscription = await subscribe(client, alice, push_service)
    subscription.respond_with(429, times=1, headers={"Retry-After": "120"})
    await make_record(client, alice, "tasks", title="Busy", remind_at=ago())

    await dispatch_round(settings)
    after_backoff = await dispatch_round(settings, now=datetime.now(UTC) + timedelta(seconds=30))
    after_retry_after = await dispatch_round(
        settings, now=datetime.now(UTC) + timedelta(seconds=130)
    )

    assert (after_backoff.delivered, after_retry_after.delivered) == (0, 1)
    assert len(subscription.messages) == 1


async def test_a_reminder_that_keeps_failing_is_given_up(client, settings, push_service):
    alice = await login_as(client)
    subscription = await subscribe(client, alice, push_service)
    subscription.respond_with(503)
    await make_record(client, alice, "tasks", title="Never", remind_at=ago())

    failed = 0
    moment = datetime.now(UTC)
    for _ in range(MAX_ATTEMPTS + 2):
        failed += (await dispatch_round(settings, now=moment)).failed
        moment += timedelta(hours=2)

    assert (failed, subscription.attempts, subscription.messages) == (1, MAX_ATTEMPTS, [])
    assert await pending_deliveries() == []
    # The subscription itself is kept: the next reminder may get through.
    assert len(await db.fetch("SELECT id FROM push_subscriptions")) == 1


async def test_a_push_service_that_does_not_answer_is_retried(client, settings, push_service):
    alice = await login_as(client)
    subscription = await subscribe(client, alice, push_service)
    push_service.close()
    # The service is closed: nothing listens on its port any more.
    await make_record(client, alice, "tasks", title="Offline service", remind_at=ago())

    report = await dispatch_round(settings)

    assert (report.retrying, report.delivered) == (1, 0)
    [queued] = await pending_deliveries()
    assert queued["attempts"] == 1
    assert subscription.messages == []


async def test_a_subscription_on_a_host_no_longer_allowed_is_dropped_unsent(
    client, settings, push_service
):
    alice = await login_as(client)
    subscription = await subscribe(client, alice, push_service)
    await make_record(client, alice, "tasks", title="Moved config", remind_at=ago())
    defaults = msgspec.structs.replace(settings, push_allowed_hosts=None)

    report = await dispatch_round(defaults)

    assert (report.gone, report.delivered, subscription.attempts) == (1, 0, 0)
    assert await db.fetch("SELECT id FROM push_subscriptions") == []


async def test_a_push_service_whose_name_resolves_privately_is_not_sent_to(
    client, settings, push_service, connections
):
    """A host allowed by name that DNS points at the server's own network: the reminder is
    dropped without a request (not retried: a real push service never resolves so)."""
    alice = await login_as(client)
    listed = "push.fieldcrm.example"
    allowed = f"{push_service.origin},{listed}"
    info = push_service.new_subscription().info
    actor = Actor(alice.user_id, alice.username, alice.role, alice.team_id)
    endpoint = f"https://{listed}/push/abc"
    await services.save_subscription(actor, endpoint, info["keys"], parse_allowed_hosts(allowed))
    await make_record(client, alice, "tasks", title="Rebound", remind_at=ago())
    lookups: list[tuple[str, int]] = []

    def private(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return ["169.254.169.254"]

    report = await dispatch_round(
        msgspec.structs.replace(settings, push_allowed_hosts=allowed), resolver=private
    )

    assert (report.failed, report.delivered, report.retrying) == (1, 0, 0)
    assert "not a public address" in report.details[0]
    assert lookups == [(listed, 443)]
    assert connections.attempts == []
    assert await pending_deliveries() == []
    # The subscription is kept: the answer may be a DNS mistake that is put right.
    assert len(await db.fetch("SELECT id FROM push_subscriptions")) == 1


async def test_many_reminders_in_one_round_each_go_out_once(client, settings, push_service):
    alice = await login_as(client)
    subscription = await subscribe(client, alice, push_service)
    count = dispatcher.SCHEDULE_BATCH + 5  # more than one batch
    body = {"protocol": 1, "client_id": str(uuid.uuid4()), "cursor": None}
    mutations = [
        {"mid": n + 1, "table": "tasks", "id": str(uuid.uuid4()), "op": "upsert",
         "fields": {"title": f"Task {n}", "remind_at": ago()}, "base_seq": None,
         "hlc": [int(datetime.now(UTC).timestamp() * 1000), n]}
        for n in range(count)
    ]  # fmt: skip
    response = await client.post(
        "/api/sync/v1", json={**body, "mutations": mutations}, headers=alice.headers
    )
    assert response.status_code == 200, response.text

    report = await dispatch_round(settings)

    assert (report.reminded, report.delivered) == (count, count)
    titles = sorted(m.payload["title"] for m in subscription.messages)
    assert titles == sorted(f"Task {n}" for n in range(count))


async def hanging_subscriptions(
    client: Any, who: Login, service: PushService, count: int
) -> list[Subscription]:
    """`count` subscriptions whose push service holds every message until it is closed."""
    subscriptions = [await subscribe(client, who, service) for _ in range(count)]
    for subscription in subscriptions:
        subscription.respond_with(201, delay_s=120)
    return subscriptions


async def test_a_push_service_that_hangs_does_not_delay_a_login(
    client, settings, push_service, monkeypatch
):
    """Sends that hang until their timeout hold sender threads only: a login on the same
    server, whose password check runs on the default executor (made small here, as on a
    two-core machine), is as quick as ever."""
    monkeypatch.setattr(dispatcher, "SEND_TIMEOUT_S", 60.0)
    monkeypatch.setattr(dispatcher, "SEND_DEADLINE_S", 120.0)
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=4))
    alice = await login_as(client)
    hanging = await hanging_subscriptions(client, alice, push_service, 20)
    await make_record(client, alice, "tasks", title="Into the void", remind_at=ago())
    sending = asyncio.create_task(dispatch_round(settings))
    try:
        await push_service.wait_for_async(lambda: sum(s.attempts for s in hanging) >= 4, 30)

        started = time.monotonic()
        bob = await login_as(client)
        took = time.monotonic() - started

        assert bob.token
        assert took < 5.0, f"a login took {took:.1f} s while push sends hung"
        assert not sending.done()
    finally:
        push_service.close()  # the held messages are answered now
        await sending


async def test_a_slow_push_service_only_slows_its_own_sends(client, settings, push_service):
    alice = await login_as(client)
    bob = await login_as(client)
    await hanging_subscriptions(client, alice, push_service, 20)
    await make_record(client, alice, "tasks", title="To the slow one", remind_at=ago())
    with PushService() as fast:
        allowed = f"{push_service.origin},{fast.origin}"
        bobs = fast.new_subscription()
        actor = Actor(bob.user_id, bob.username, bob.role, bob.team_id)
        await services.save_subscription(
            actor, bobs.endpoint, bobs.info["keys"], parse_allowed_hosts(allowed)
        )
        await make_record(client, bob, "tasks", title="To the fast one", remind_at=ago())
        both = msgspec.structs.replace(settings, push_allowed_hosts=allowed)
        sending = asyncio.create_task(dispatch_round(both))
        try:
            await fast.wait_for_async(lambda: bobs.messages, timeout=5)
        finally:
            push_service.close()
            report = await sending

    assert [m.payload["title"] for m in bobs.messages] == ["To the fast one"]
    assert report.delivered >= 1


async def test_a_push_service_that_times_out_is_not_tried_again_in_that_batch(
    client, settings, push_service, monkeypatch
):
    monkeypatch.setattr(dispatcher, "SEND_TIMEOUT_S", 0.5)
    alice = await login_as(client)
    hanging = await hanging_subscriptions(client, alice, push_service, 20)
    await make_record(client, alice, "tasks", title="Nobody home", remind_at=ago())

    report = await dispatch_round(settings)

    # One wave of sends waits for its timeout; the rest are put back without a request,
    # and without using up an attempt.
    assert (report.retrying, report.delivered) == (20, 0)
    tried = dispatcher.PER_SERVICE_CONCURRENCY
    assert sum(s.attempts for s in hanging) <= tried  # some may time out before they arrive
    attempts = sorted(row["attempts"] for row in await pending_deliveries())
    assert attempts == [0] * (20 - tried) + [1] * tried
    assert all(row["claimed_until"] is None for row in await pending_deliveries())


async def test_the_loop_logs_a_failed_round_and_goes_on(settings, monkeypatch, caplog):
    rounds: list[int] = []
    second_round = asyncio.Event()

    async def flaky_round(_: Settings) -> dispatcher.RoundReport:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("database went away")
        second_round.set()
        return dispatcher.RoundReport()

    monkeypatch.setattr(dispatcher, "dispatch_round", flaky_round)
    caplog.set_level(logging.ERROR, logger="fieldcrm.push")
    loop = asyncio.create_task(dispatcher.run_dispatcher(settings))
    try:
        await asyncio.wait_for(second_round.wait(), timeout=5)
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
    assert "reminder round failed" in caplog.text
    assert "database went away" in caplog.text
