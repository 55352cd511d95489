"""Photos on a visit, taken offline at 360 px (SPEC section 13): shrunk on the phone, kept in
IndexedDB, uploaded once back online (resuming after a dropped upload), each reaching the
server once, with the visit; shown in the account's timeline and opened whole."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.async_api import Route, expect

from e2e.conftest import Server
from e2e.pages import PHONE, App, Phones, Rest

SHOP = (45.7640, 4.8357)
BLOBS = "**/api/attachments/blobs/**"
# What the phone keeps of its captures, read inside the page (Blobs cannot leave it).
KEPT = """async () => Promise.all((await window.fieldcrm.rows("blobs")).map(async (b) => {
  const photo = b.blob && b.media_type.startsWith("image/");
  const size = photo ? await createImageBitmap(b.blob) : null;
  return {sha256: b.sha256, pending: b.pending, thumb: !!b.thumb,
          width: size && size.width, height: size && size.height};
}))"""


def camera_photo(path: Path, seed: int) -> Path:
    """A photo as a phone's camera makes it: 3000x2000, noisy enough to be big."""
    image = Image.effect_noise((3000, 2000), 40 + seed).convert("RGB")
    image.save(path, "JPEG", quality=90)
    return path


def stored(server: Server) -> dict[str, bytes]:
    root = Path(server.env["FIELDCRM_BLOB_URL"].removeprefix("file://"))
    return {f: (Path(d) / f).read_bytes() for d, _, files in os.walk(root) for f in files}


async def test_photos_taken_offline_reach_the_server_once(
    server: Server, phones: Phones, tmp_path: Path, artifacts: Path
) -> None:
    server.add_user("alice")
    alice = await Rest.login(server.url, "alice")
    try:
        shop = await alice.create("accounts", name="Fromagerie Hopper", lat=SHOP[0], lng=SHOP[1])
    finally:
        await alice.close()
    shots = [camera_photo(tmp_path / f"IMG_{n}.jpg", n) for n in (1, 2)]

    app = await phones.signed_in(
        server.url,
        "alice",
        permissions=["geolocation"],
        geolocation={"latitude": SHOP[0], "longitude": SHOP[1], "accuracy": 12},
    )
    await app.set_offline(True)

    # At the shop, no signal: check in, two photos, one of them taken twice.
    await app.account.open(shop["id"])
    await app.account.log_visit()
    await app.visit_form.check_in()
    await expect(app.tid("attach-voice")).to_be_visible()  # Chromium records
    photo_input = app.tid("attach-photo-input")
    await photo_input.set_input_files([str(shots[0]), str(shots[1])])
    await expect(app.tid("attach-held-item")).to_have_count(2)
    await photo_input.set_input_files(str(shots[0]))  # the same bytes: held once
    await app.visit_form.fill(outcome="met", summary="Shelf photos for the buyer")
    await expect(app.tid("attach-held-item")).to_have_count(2)
    assert await app.scroll_width() <= PHONE["width"]
    await app.tid("attach-buttons").scroll_into_view_if_needed()
    await app.page.screenshot(path=artifacts / "screen-visit-photos-offline.png")
    visit_id = await app.visit_form.save()

    kept = await app.page.evaluate(KEPT)
    assert len(kept) == 2 and all(k["pending"] == 1 and k["thumb"] for k in kept)
    assert all(max(k["width"], k["height"]) == 1600 for k in kept), kept  # shrunk from 3000
    section = app.tid("visit-attachments")
    await expect(section.get_by_test_id("attachment-thumb")).to_have_count(2)
    await app.page.screenshot(path=artifacts / "screen-visit-with-photos.png", full_page=True)
    await app.expect_pending(3)  # the visit and two attachments rows

    # Back online. The signal drops during the first upload; the next sync goes on.
    dropped: list[str] = []

    async def drop_once(route: Route) -> None:
        if not dropped:
            dropped.append(route.request.url)
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    await app.page.route(BLOBS, drop_once)
    await app.set_offline(False)
    await app.synced()
    await until(lambda: len(dropped) == 1)
    assert sum(k["pending"] for k in await app.page.evaluate(KEPT)) == 2  # neither went
    await app.synced()
    await until(lambda: pending(app), 0)
    assert len(dropped) == 1
    await app.page.unroute(BLOBS)

    alice = await Rest.login(server.url, "alice")
    try:
        visits = await alice.list("visits")
        assert [v["id"] for v in visits] == [visit_id]
        assert visits[0]["verification"] == "verified"
        rows = await alice.list("attachments")
        assert len(rows) == 2 and {r["visit_id"] for r in rows} == {visit_id}
        assert all(r["uploaded"] and r["account_id"] == shop["id"] for r in rows)
        assert {r["media_type"] for r in rows} == {"image/jpeg"}
        files = stored(server)
        assert sorted(files) == sorted(r["sha256"] for r in rows)  # each stored once
        for name, data in files.items():
            assert hashlib.sha256(data).hexdigest() == name
            assert max(Image.open(io.BytesIO(data)).size) == 1600
    finally:
        await alice.close()

    # The timeline: both thumbnails; a tap opens the photo whole, from the server.
    await app.synced()
    kept = await app.page.evaluate(KEPT)
    assert all(k["pending"] == 0 and k["width"] is None and k["thumb"] for k in kept)
    await app.account.open(shop["id"])
    timeline = app.tid("account-attachments")
    await expect(timeline.get_by_test_id("attachment")).to_have_count(2)
    for item in await timeline.get_by_test_id("attachment").all():
        await expect(item).to_have_attribute("data-uploaded", "yes")
    assert await app.scroll_width() <= PHONE["width"]
    await timeline.scroll_into_view_if_needed()
    await app.page.screenshot(path=artifacts / "screen-account-photos.png")
    await timeline.get_by_test_id("attachment-thumb").first.click()
    full = app.tid("attachment-full")
    await expect(full).to_be_visible()
    await until(lambda: full.evaluate("(img) => img.naturalWidth"), 1600)
    await app.page.screenshot(path=artifacts / "screen-photo-viewer.png")
    await app.tid("attachment-close").click()
    await expect(app.tid("attachment-viewer")).to_have_count(0)


async def pending(app: App) -> int:
    """Captures still waiting on the phone."""
    return sum(k["pending"] for k in await app.page.evaluate(KEPT))


async def until(probe: Callable[[], Any], expected: Any = True, timeout_s: float = 10) -> None:
    """Wait until `probe()` (awaited if it is a coroutine) gives `expected`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value == expected:
            return
        assert asyncio.get_running_loop().time() < deadline, f"still {value!r}, not {expected!r}"
        await asyncio.sleep(0.1)


async def test_a_voice_note_recorded_offline_is_uploaded(
    server: Server, tmp_path: Path, artifacts: Path
) -> None:
    """Chromium's fake microphone (a beep): recorded with MediaRecorder, kept, sent, and
    taken by the server as the audio/webm it is."""
    from playwright.async_api import async_playwright

    from e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    server.add_user("alice")
    alice = await Rest.login(server.url, "alice")
    try:
        shop = await alice.create("accounts", name="Cave Hopper", lat=SHOP[0], lng=SHOP[1])
    finally:
        await alice.close()
    fake_microphone = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *fake_microphone], headless=True
        )
        phones = Phones(browser)
        try:
            app = await phones.signed_in(server.url, "alice", permissions=["microphone"])
            await app.set_offline(True)
            await app.account.open(shop["id"])
            await app.account.log_visit()
            voice = app.tid("attach-voice")
            await voice.click()
            await expect(voice).to_have_attribute("data-recording", "yes")
            await app.page.wait_for_timeout(1500)  # a second and a half of speech
            await voice.click()
            await expect(voice).to_have_attribute("data-recording", "no")
            await expect(app.tid("attach-held-item")).to_have_count(1)
            await app.visit_form.save()
            await expect(app.tid("attachment-audio")).to_have_count(1)
            await app.tid("attach-buttons").scroll_into_view_if_needed()
            await app.page.screenshot(path=artifacts / "screen-visit-voice-note.png")
            await app.set_offline(False)
            await app.synced()
            await until(lambda: pending(app), 0)
            assert phones.errors() == []
        finally:
            await phones.close()
            await browser.close()
    alice = await Rest.login(server.url, "alice")
    try:
        [row] = await alice.list("attachments")
        assert row["media_type"] == "audio/webm" and row["uploaded"] is True
        [(name, data)] = stored(server).items()
        assert name == row["sha256"] and data[:4] == b"\x1a\x45\xdf\xa3"
    finally:
        await alice.close()


async def test_a_photo_on_a_note_taken_offline_reaches_the_server(
    server: Server, phones: Phones, tmp_path: Path, artifacts: Path
) -> None:
    """Photos hang off notes too (issue 17): kept with the note offline, uploaded once back
    online, the server's row naming the note, shown in the account's timeline."""
    server.add_user("alice")
    alice = await Rest.login(server.url, "alice")
    try:
        shop = await alice.create("accounts", name="Droguerie Hopper", lat=SHOP[0], lng=SHOP[1])
    finally:
        await alice.close()
    shot = camera_photo(tmp_path / "IMG_note.jpg", 7)
    app = await phones.signed_in(server.url, "alice")
    await app.set_offline(True)

    await app.account.open(shop["id"])
    await app.account.add_note()
    await app.tid("attach-photo-input").set_input_files(str(shot))
    await expect(app.tid("attach-held-item")).to_have_count(1)
    assert await app.scroll_width() <= PHONE["width"]
    await app.page.screenshot(path=artifacts / "screen-note-photo-offline.png")
    await app.note_form.write("The new shelf, as the buyer asked")
    await app.account.expect_open(shop["id"])
    assert await pending(app) == 1

    await app.set_offline(False)
    await app.synced()
    await until(lambda: pending(app), 0)
    alice = await Rest.login(server.url, "alice")
    try:
        [note] = await alice.list("notes")
        [row] = await alice.list("attachments")
        assert row["note_id"] == note["id"] and row["visit_id"] is None
        assert row["uploaded"] and row["account_id"] == shop["id"]
        assert list(stored(server)) == [row["sha256"]]
    finally:
        await alice.close()
    await app.synced()
    await app.account.open(shop["id"])
    item = app.tid("account-attachments").get_by_test_id("attachment")
    await expect(item).to_have_count(1)
    await expect(item).to_have_attribute("data-uploaded", "yes")
