"""Me → Phone calendar: the link made in the app serves the rep's tasks with their alarms
to a client with no token, as a calendar app would fetch it; a new link or "turn off" ends
the old one; offline the screen says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import icalendar
from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import PHONE, Phones, Rest


async def test_the_calendar_link_from_me(server: Server, phones: Phones, artifacts: Path) -> None:
    server.add_user("alice", team="north")
    alice = await Rest.login(server.url, "alice")
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    try:
        shop = await alice.create("accounts", name="Cave des Canuts", city="Lyon")
        task = await alice.create(
            "tasks",
            title="Tasting",
            account_id=shop["id"],
            due_at=due.isoformat(),
            remind_at=(due - timedelta(hours=2)).isoformat(),
        )
    finally:
        await alice.close()

    app = await phones.signed_in(server.url, "alice")
    await app.tid("nav-settings").click()
    await expect(app.tid("calendar-state")).to_contain_text("No calendar link yet")

    await app.tid("calendar-make").click()
    link = app.tid("calendar-link")
    await expect(link).to_be_visible()
    url = await link.input_value()
    assert url.startswith(server.url) and url.endswith(".ics")
    await expect(app.tid("calendar-revoke")).to_be_visible()
    assert await app.scroll_width() <= PHONE["width"]
    await app.tid("calendar-help").click()
    help_text = await app.tid("calendar-help").inner_text()
    assert "iPhone:" in help_text and "Android:" in help_text  # how to add it on each
    await app.tid("me-calendar").screenshot(path=artifacts / "screen-me-calendar.png")

    async with httpx.AsyncClient(timeout=10) as calendar_app:
        response = await calendar_app.get(url)
        assert response.status_code == 200, response.text
        events = list(icalendar.Calendar.from_ical(response.content).walk("VEVENT"))
        assert [str(e["uid"]) for e in events] == [task["id"]]
        assert "Cave des Canuts" in str(events[0]["location"])
        assert events[0].walk("VALARM")[0].decoded("trigger") == due - timedelta(hours=2)

        # Private, made anew: the old link stops, the new one names no customer.
        await app.tid("calendar-private").check()
        await app.tid("calendar-make").click()
        await expect(link).not_to_have_value(url)
        private_url = await link.input_value()
        assert (await calendar_app.get(url)).status_code == 404
        private = await calendar_app.get(private_url)
        assert private.status_code == 200 and "Cave des Canuts" not in private.text
        await expect(app.tid("calendar-state")).to_contain_text("private")

        await app.tid("calendar-revoke").click()
        await expect(app.tid("calendar-state")).to_contain_text("No calendar link yet")
        assert (await calendar_app.get(private_url)).status_code == 404

    await app.set_offline(True)
    await app.tid("nav-today").click()
    await app.tid("nav-settings").click()
    await expect(app.tid("calendar-state")).to_contain_text("Offline")
