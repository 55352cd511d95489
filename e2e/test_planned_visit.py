"""Plan a visit from an account, offline: it is a planned visit (kind `visit`) on Today; logging
the visit there marks it done on the phone at once, and on the server once synced."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import PHONE, Phones, Rest, TodayScreen


async def test_plan_a_visit_then_make_it_offline(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    server.add_user("alice", team="north")
    alice = await Rest.login(server.url, "alice")
    try:
        shop = await alice.create("accounts", name="Cave des Canuts", lat=45.77, lng=4.83)
    finally:
        await alice.close()

    app = await phones.signed_in(server.url, "alice")
    await app.set_offline(True)

    await app.account.open(shop["id"])
    directions = await app.tid("account-directions").get_attribute("href")
    assert directions and directions.startswith("geo:45.77,4.83")
    await app.tid("account-plan-visit").click()
    form = app.tid("task-form")
    await expect(form).to_be_visible()
    await expect(form.get_by_test_id("field-kind")).to_have_value("visit")
    await expect(form.get_by_test_id("field-title")).to_have_value("Visit Cave des Canuts")
    assert await form.get_by_test_id("field-due_at").input_value()  # tomorrow, 9:00
    # Planned for earlier today instead.
    due = await app.page.evaluate(
        """() => {
            const d = new Date(Date.now() - 3600_000);
            const p = (n) => String(n).padStart(2, "0");
            const day = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
            return `${day}T${p(d.getHours())}:${p(d.getMinutes())}`;
        }"""
    )
    await form.get_by_test_id("field-due_at").fill(due)
    assert await app.scroll_width() <= PHONE["width"]
    await form.screenshot(path=artifacts / "screen-plan-visit.png")
    await form.get_by_test_id("form-save").click()

    today = TodayScreen(app)
    await today.open()
    row = app.tid("today-tasks").get_by_test_id("task-row")
    await expect(row).to_have_count(1)
    # The day's plan names the account first (the row's title), what to do there under it.
    await expect(row.get_by_test_id("task-account")).to_have_text("Cave des Canuts")
    await expect(row.get_by_test_id("task-account")).to_have_class(re.compile("row-title"))
    await expect(row.get_by_test_id("task-title")).to_have_text("Planned visit")

    await app.account.open(shop["id"])
    await app.account.log_visit()
    await app.visit_form.fill(outcome="met", summary="Tasting booked")
    await app.visit_form.save()
    await today.open()
    await expect(app.tid("today-tasks-empty")).to_be_visible()

    await app.set_offline(False)
    await app.synced()
    alice = await Rest.login(server.url, "alice")
    try:
        tasks = await alice.list("tasks")
        assert [(t["kind"], t["done"]) for t in tasks] == [("visit", True)]
        assert tasks[0]["done_at"] is not None
    finally:
        await alice.close()
