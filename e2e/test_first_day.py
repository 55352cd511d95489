"""The bugs a rep finds on a first day (issue 18), each on a 360 px phone: tapping a task's
title leaves it alone; Done has an Undo; "Snooze 1 h" on an overdue task moves it an hour
from now; a task made from Today is linked to an account, offline; an unknown link says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import PHONE, App, Phones, Rest


def when(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


async def signed_in(server: Server, phones: Phones, username: str = "alice") -> App:
    app = await phones.signed_in(server.url, username, controlled=False)
    return app


async def test_a_title_tap_leaves_the_task_and_done_can_be_undone(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    server.add_user("alice")
    rest = await Rest.login(server.url, "alice")
    try:
        # Overdue: "due today" whenever the test runs (due in 30 min is tomorrow at 23:45).
        due = datetime.now(UTC) - timedelta(minutes=30)
        task = await rest.create("tasks", title="Call the baker", due_at=due.isoformat())
        app = await signed_in(server, phones)
        row = app.page.locator(f'[data-testid=today-tasks] [data-id="{task["id"]}"]')
        await expect(row).to_be_visible()

        # The title is words to read: a tap on it changes nothing.
        await row.get_by_test_id("task-title").click()
        await expect(row.get_by_test_id("task-done")).not_to_be_checked()
        assert await app.outbox() == []

        # The box: done at once, and the toast offers to take it back.
        await row.get_by_test_id("task-done").click()
        await expect(row).to_have_count(0)  # Today lists open tasks only
        undo = app.tid("toast").get_by_test_id("toast-action")
        await expect(undo).to_have_text("Undo")
        await app.page.screenshot(path=artifacts / "first-day-undo.png")
        box = await undo.bounding_box()
        assert box and box["height"] >= 44, box
        await undo.click()
        await expect(row).to_be_visible()
        await expect(row.get_by_test_id("task-done")).not_to_be_checked()
        await expect(app.tid("toast")).to_have_text("Task reopened")
        await app.synced()
        assert (await rest.get("tasks", task["id"]))["done"] is False

        # The same from the task's form.
        await row.get_by_test_id("task-edit").click()
        await app.tid("task-form").get_by_test_id("field-done").check()
        await app.tid("form-save").click()
        await expect(undo).to_be_visible()
        await undo.click()
        reopened = app.page.locator(f'[data-testid=task-row][data-id="{task["id"]}"]')
        await expect(reopened).to_be_visible()
        await app.synced()
        assert (await rest.get("tasks", task["id"]))["done"] is False

        # Everywhere a task is listed: the Tasks screen and its account's screen.
        shop = await rest.create("accounts", name="Boulangerie Dupré", city="Lyon")
        linked = await rest.create(
            "tasks", title="Bring the price list", account_id=shop["id"], due_at=due.isoformat()
        )
        await app.synced()
        for route in ("#/tasks", f"#/account/{shop['id']}"):
            await app.go(route)
            listed = app.page.locator(f'[data-testid=task-row][data-id="{linked["id"]}"]')
            await listed.get_by_test_id("task-done").click()
            await undo.click()
            await expect(app.tid("toast")).to_have_text("Task reopened")
            await expect(listed.get_by_test_id("task-done")).not_to_be_checked()
        await app.synced()
        assert (await rest.get("tasks", linked["id"]))["done"] is False
    finally:
        await rest.close()


async def test_snooze_on_an_overdue_task_moves_due_and_reminder_from_now(
    server: Server, phones: Phones
) -> None:
    server.add_user("alice")
    rest = await Rest.login(server.url, "alice")
    try:
        due = datetime.now(UTC) - timedelta(hours=3)
        task = await rest.create(
            "tasks",
            title="Send the quote",
            due_at=due.isoformat(),
            remind_at=(due - timedelta(minutes=15)).isoformat(),
        )
        app = await signed_in(server, phones)
        await app.tasks.open()
        row = app.tasks.row(task["id"])
        await expect(row.get_by_test_id("task-due")).to_contain_text("Overdue")
        pressed = datetime.now(UTC)
        await row.get_by_test_id("task-snooze").click()
        await expect(row.get_by_test_id("task-due")).not_to_contain_text("Overdue")
        [entry] = await app.outbox()
        moved_due = when(entry["fields"]["due_at"])
        moved_remind = when(entry["fields"]["remind_at"])
        assert timedelta(minutes=59) < moved_due - pressed < timedelta(minutes=61)
        assert moved_remind <= moved_due
        assert timedelta(minutes=59) < moved_remind - pressed
        await app.synced()
        stored = await rest.get("tasks", task["id"])
        assert when(stored["due_at"]) == moved_due
        assert when(stored["remind_at"]) == moved_remind
    finally:
        await rest.close()


async def test_a_task_from_today_is_linked_to_an_account_offline(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    server.add_user("alice")
    rest = await Rest.login(server.url, "alice")
    try:
        bakery = await rest.create(
            "accounts", name="Boulangerie Dupré", city="Villeurbanne", postal_code="69100"
        )
        cheese = await rest.create("accounts", name="Fromagerie Girard", city="Lyon")
        app = await signed_in(server, phones)
        await app.set_offline(True)

        await app.tid("today-new-task").click()
        form = app.tid("task-form")
        await form.get_by_test_id("field-title").fill("Bring the new price list")
        await form.get_by_test_id("account-picker-search").fill("dupre")
        option = form.get_by_test_id("account-picker-option")
        await expect(option).to_have_count(1)
        await expect(option).to_contain_text("Boulangerie Dupré")
        await option.click()
        await expect(form.get_by_test_id("account-picker-name")).to_have_text(
            "Boulangerie Dupré · Villeurbanne"
        )
        assert await app.scroll_width() <= PHONE["width"]
        await app.page.screenshot(path=artifacts / "first-day-task-account.png")
        await form.get_by_test_id("form-save").click()
        await app.account.expect_open(bakery["id"])
        row = app.tid("account-tasks").get_by_test_id("task-row")
        await expect(row).to_contain_text("Bring the new price list")

        # Moved to another account from the Tasks screen's edit.
        await app.tasks.open()
        task_row = app.tid("task-row")
        await expect(task_row.get_by_test_id("task-account")).to_have_text("Boulangerie Dupré")
        await task_row.get_by_test_id("task-edit").click()
        await form.get_by_test_id("account-picker-clear").click()
        await form.get_by_test_id("account-picker-search").fill("GIR")
        await form.get_by_test_id("account-picker-option").click()
        await form.get_by_test_id("form-save").click()
        await app.account.expect_open(cheese["id"])

        await app.set_offline(False)
        await app.synced()
        [task] = await rest.list("tasks")
        assert task["title"] == "Bring the new price list"
        assert task["account_id"] == cheese["id"]
    finally:
        await rest.close()


async def test_an_unknown_link_shows_not_found(server: Server, phones: Phones) -> None:
    server.add_user("alice")
    app = await phones.open(server.url)
    await app.open("#/nonsense")
    await app.expect_screen("not-found")
    await expect(app.tid("not-found")).to_contain_text("Page not found")
    await app.login("alice")
    await app.go("#/account/x/y/z")
    await app.expect_screen("not-found")
    await expect(app.tid("nav-today")).not_to_have_attribute("aria-current", "page")
    await app.tid("not-found-home").click()
    await app.expect_screen("today")
