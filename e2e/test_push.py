"""Push reminders in real Chromium: a push message reaches the service worker, which shows
the task; the rep ticks it off from the notification with no signal, and once back online
the change reaches the server.

Headless Chromium has no push service and cannot click a notification, so the test goes
around both, and only those: the push message is delivered through the DevTools protocol
(`ServiceWorker.deliverPushMessage`, the same `push` event a real one fires), and the
notification's "Done" button is pressed by posting `{type: "REMINDER_ACTION"}` to the
worker, which runs the very function its `notificationclick` handler runs (pwa/sw.js)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from e2e.conftest import Server
from e2e.pages import App, Phones, Rest

NOTIFICATIONS = """async () => {
  const registration = await navigator.serviceWorker.ready;
  const shown = await registration.getNotifications();
  return shown.map((n) => ({
    title: n.title, body: n.body, tag: n.tag, data: n.data,
    actions: n.actions.map((a) => a.action),
  }));
}"""

PRESS = """async ([action, reminder]) => {
  const registration = await navigator.serviceWorker.ready;
  const channel = new MessageChannel();
  const answer = new Promise((resolve) => { channel.port1.onmessage = (e) => resolve(e.data); });
  registration.active.postMessage({ type: "REMINDER_ACTION", action, reminder }, [channel.port2]);
  return answer;
}"""


async def deliver_push(app: App, origin: str, payload: dict[str, Any]) -> None:
    """A push message to the app's service worker, as its push service would deliver it.
    The ServiceWorker domain names the registration, once enabled on the same session."""
    cdp = await app.context.new_cdp_session(app.page)
    found: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_update(event: dict[str, Any]) -> None:
        for registration in event["registrations"]:
            if registration["scopeURL"] == f"{origin}/" and not registration["isDeleted"]:
                if not found.done():
                    found.set_result(registration["registrationId"])

    cdp.on("ServiceWorker.workerRegistrationUpdated", on_update)
    await cdp.send("ServiceWorker.enable")
    registration_id = await asyncio.wait_for(found, timeout=10)
    await cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": origin, "registrationId": registration_id, "data": json.dumps(payload)},
    )
    await cdp.detach()


# Playwright's browser contexts are incognito, where Chromium has no Push API: the app's
# pushManager.subscribe() fails there (quietly, in the background) and Chromium itself logs
# this console error, which says it cannot be detected beforehand. Real profiles do not.
INCOGNITO_PUSH = "does not support the Push API in incognito mode"


def errors_but_incognito_push(phones: Phones) -> list[str]:
    for app in phones.apps:
        app.watch.errors[:] = [e for e in app.watch.errors if INCOGNITO_PUSH not in e]
    return phones.errors()


async def notifications(app: App, *, count: int, seconds: float = 10) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        shown: list[dict[str, Any]] = await app.page.evaluate(NOTIFICATIONS)
        if len(shown) == count:
            return shown
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"expected {count} notification(s), have {shown}")
        await asyncio.sleep(0.1)


async def reminder_shown(app: App, origin: str, reminder: dict[str, Any]) -> dict[str, Any]:
    """Deliver a reminder and return the one notification it shows.

    DevTools answers deliverPushMessage before the push event has run, and on this machine,
    under load, about one delivery in 15 showed nothing at all, with the worker running and
    no error anywhere (the cause is not known; any delay before the delivery made it go
    away). A push service delivers at least once, so the app must take a repeat anyway: the
    task's notification replaces itself (same tag), never a second one. So a delivery that
    shows nothing within 5 s is delivered once more, and a handler that never shows
    anything still fails the test."""
    await deliver_push(app, origin, reminder)
    try:
        [shown] = await notifications(app, count=1, seconds=5)
    except AssertionError:
        await deliver_push(app, origin, reminder)
        [shown] = await notifications(app, count=1)
    return shown


async def test_a_reminder_is_shown_and_done_from_it_offline(server: Server, phones: Phones) -> None:
    server.add_user("alice")
    app = await phones.open(server.url)
    await app.context.grant_permissions(["notifications"], origin=server.url)
    await app.open()
    await app.login("alice")
    await app.wait_controlled()

    rest = await Rest.login(server.url, "alice")
    try:
        account = await rest.create("accounts", name="Boulangerie Martin")
        later = datetime.now(UTC) + timedelta(hours=1)
        task = await rest.create(
            "tasks", title="Bring samples", account_id=account["id"],
            due_at=later.isoformat(), remind_at=later.isoformat(),
        )  # fmt: skip
        await app.synced()

        # What the dispatcher sends (server/push/dispatcher.py reminder_payload).
        reminder = {
            "type": "task_reminder",
            "task_id": task["id"],
            "title": "Bring samples",
            "account_id": account["id"],
            "account_name": "Boulangerie Martin",
            "due_at": task["due_at"],
            "url": f"/#/task/{task['id']}/edit",
        }
        shown = await reminder_shown(app, server.url, reminder)
        assert shown["title"] == "Bring samples"
        assert shown["body"].startswith("Boulangerie Martin · Due ")
        assert shown["tag"] == f"task-{task['id']}"
        assert shown["actions"] == ["done", "snooze"]
        assert shown["data"]["task_id"] == task["id"]
        assert shown["data"]["url"] == f"{server.url}/#/task/{task['id']}/edit"

        # No signal: "Done" on the notification writes the change and its outbox entry.
        await app.set_offline(True)
        answer = await app.page.evaluate(PRESS, ["done", shown["data"]])
        assert answer == {"ok": True, "outcome": "saved"}
        await notifications(app, count=0)
        [entry] = await app.outbox()
        assert (entry["table"], entry["id"], entry["op"], entry["fields"]) == (
            "tasks", task["id"], "upsert", {"done": True},
        )  # fmt: skip
        assert entry["base_seq"] is not None
        [row] = [r for r in await app.rows("tasks") if r["id"] == task["id"]]
        assert row["done"] is True
        await app.expect_pending(1)
        assert (await rest.get("tasks", task["id"]))["done"] is False

        # Pressing it again changes nothing: the task is done already.
        again = await app.page.evaluate(PRESS, ["done", shown["data"]])
        assert again == {"ok": True, "outcome": "unchanged"}

        # Back online: the app sends it, and the server has the task done.
        await app.set_offline(False)
        await app.synced()
        assert (await rest.get("tasks", task["id"]))["done"] is True
    finally:
        await rest.close()
    assert errors_but_incognito_push(phones) == []


async def test_snooze_from_a_notification_moves_the_reminder_an_hour_on(
    server: Server, phones: Phones
) -> None:
    server.add_user("bob")
    app = await phones.open(server.url)
    await app.context.grant_permissions(["notifications"], origin=server.url)
    await app.open()
    await app.login("bob")
    await app.wait_controlled()
    rest = await Rest.login(server.url, "bob")
    try:
        due = datetime.now(UTC) - timedelta(minutes=5)
        task = await rest.create("tasks", title="Call back", remind_at=due.isoformat())
        await app.synced()
        reminder = {
            "type": "task_reminder", "task_id": task["id"], "title": "Call back",
            "account_id": None, "account_name": None, "due_at": None, "url": "/#/tasks",
        }  # fmt: skip
        shown = await reminder_shown(app, server.url, reminder)
        assert shown["body"] == ""
        # The same message again (push services deliver at least once): still one.
        await deliver_push(app, server.url, reminder)
        await asyncio.sleep(0.5)
        [shown] = await notifications(app, count=1)

        await app.set_offline(True)
        pressed_at = datetime.now(UTC)
        answer = await app.page.evaluate(PRESS, ["snooze", shown["data"]])
        assert answer == {"ok": True, "outcome": "saved"}
        [entry] = await app.outbox()
        assert set(entry["fields"]) == {"remind_at"}
        moved = datetime.fromisoformat(entry["fields"]["remind_at"].replace("Z", "+00:00"))
        # From now, not from the old time in the past: it must not fire again at once.
        assert timedelta(minutes=59) < moved - pressed_at < timedelta(minutes=61)

        await app.set_offline(False)
        await app.synced()
        stored = await rest.get("tasks", task["id"])
        assert datetime.fromisoformat(stored["remind_at"].replace("Z", "+00:00")) == moved
    finally:
        await rest.close()
    assert errors_but_incognito_push(phones) == []


async def test_permission_is_asked_when_the_first_reminder_is_set_not_on_load(
    server: Server, phones: Phones
) -> None:
    server.add_user("carol")
    app = await phones.open(server.url)
    await app.open()
    await app.login("carol")
    await app.wait_controlled()
    assert await app.meta("push_asked") is None

    # A task without a reminder: still no question.
    await app.go("#/task/new")
    await app.tid("field-title").fill("No reminder")
    await app.tid("form-save").click()
    await app.expect_screen("tasks")
    assert await app.meta("push_asked") is None

    await app.go("#/task/new")
    await app.tid("field-title").fill("Call the baker")
    soon = (datetime.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    await app.tid("field-remind_at").fill(soon)
    await app.tid("form-save").click()
    await app.expect_screen("tasks")
    for _ in range(50):
        if await app.meta("push_asked"):
            break
        await asyncio.sleep(0.1)
    assert isinstance(await app.meta("push_asked"), int)
    assert errors_but_incognito_push(phones) == []
