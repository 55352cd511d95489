"""Attachments (SPEC sections 3 and 13) over HTTP on SQLite and PostgreSQL: the rows, the
upload of their bytes (types, size, hash, content, a hash no row names, the same bytes
twice at once), who may read the bytes, and `uploaded` reaching phones by sync."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from server import db
from server.core.erasure import forget_blob
from server.settings import Settings
from tests.contract.helpers import Device
from tests.factories import (
    Login,
    login_as,
    make_account,
    make_attachment,
    make_child,
    new_id,
    photo,
    put_blob,
    sha256_of,
)

MIB = 1024 * 1024
# The first bytes of each container a phone records in, enough for the server's check.
SOUNDS = {
    "audio/webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm"
    + b"\0" * 200,
    "audio/mp4": b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00M4A isommp42" + b"\0" * 200,
    "audio/mpeg": b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\0" * 200,
    "audio/ogg": b"OggS\x00\x02" + b"\0" * 200,
}


def stored_files(settings: Settings) -> list[Path]:
    root = Path(settings.blob_url.removeprefix("file://"))
    return sorted(Path(d, f) for d, _, files in os.walk(root) for f in files)


async def blob_rows(sha: str = "") -> list[dict[str, Any]]:
    if sha:
        return await db.fetch("SELECT * FROM attachment_blobs WHERE sha256 = {}", sha)
    return await db.fetch("SELECT * FROM attachment_blobs")


async def row(client: Any, who: Login, attachment_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/attachments/{attachment_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def rep_with_account(client: Any, team: str = "north") -> tuple[Login, dict[str, Any]]:
    rep = await login_as(client, "rep", team)
    return rep, await make_account(client, rep, name="Boulangerie Hopper")


# -- the rows ---------------------------------------------------------------------------


async def test_an_attachment_hangs_off_a_visit_a_note_or_an_account(client: Any) -> None:
    rep, account = await rep_with_account(client)
    visit = await make_child(client, rep, "visits", account["id"])
    note = await make_child(client, rep, "notes", account["id"])
    on_visit = await make_attachment(client, rep, photo(1), visit_id=visit["id"])
    assert on_visit["account_id"] == account["id"]  # the visit's
    assert on_visit["author_id"] == rep.user_id and on_visit["uploaded"] is False
    on_note = await make_attachment(client, rep, photo(2), note_id=note["id"], caption="Shelf")
    assert on_note["account_id"] == account["id"]
    on_account = await make_attachment(client, rep, photo(3), account_id=account["id"])
    assert on_account["visit_id"] is None and on_account["note_id"] is None
    listed = await client.get(
        f"/api/attachments?account_id={account['id']}&q=shelf", headers=rep.headers
    )
    assert [r["id"] for r in listed.json()["items"]] == [on_note["id"]]
    whole = await client.get(f"/api/accounts/{account['id']}", headers=rep.headers)
    assert len(whole.json()["attachments"]) == 3


async def test_bad_attachment_rows_are_refused(client: Any) -> None:
    rep, account = await rep_with_account(client)
    other = await make_account(client, rep, name="Elsewhere")
    visit = await make_child(client, rep, "visits", other["id"])
    data = photo(4)
    base = {"sha256": sha256_of(data), "media_type": "image/jpeg", "bytes": len(data)}
    cases = [
        ({**base}, 422, "visit_id, note_id or account_id"),
        ({**base, "account_id": account["id"], "visit_id": visit["id"]}, 422, "another account"),
        ({**base, "visit_id": new_id()}, 404, "no visit"),
        ({**base, "note_id": new_id()}, 404, "no note"),
        ({**base, "account_id": account["id"], "media_type": "image/gif"}, 422, "one of"),
        ({**base, "account_id": account["id"], "sha256": "AB" * 32}, 422, "64 lowercase hex"),
        ({**base, "account_id": account["id"], "bytes": 10 * MIB + 1}, 422, "between"),
        ({**base, "account_id": account["id"], "uploaded": True}, 422, "kept by the server"),
    ]
    for body, status, words in cases:
        response = await client.post("/api/attachments", json=body, headers=rep.headers)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["detail"], response.text
    made = await make_attachment(client, rep, data, account_id=account["id"])
    path = f"/api/attachments/{made['id']}"
    for fields in ({"sha256": "ab" * 32}, {"media_type": "image/png"}, {"bytes": 5}):
        response = await client.patch(path, json=fields, headers=rep.headers)
        assert response.status_code == 422 and "fixed once made" in response.json()["detail"]
    same = await client.patch(path, json={"sha256": base["sha256"], "caption": "Door"},
                              headers=rep.headers)  # fmt: skip
    assert same.status_code == 200 and same.json()["caption"] == "Door"
    moved = await client.patch(path, json={"visit_id": visit["id"]}, headers=rep.headers)
    assert moved.status_code == 422 and "another account" in moved.json()["detail"]
    nulled = await client.patch(path, json={"account_id": None}, headers=rep.headers)
    assert nulled.status_code == 422


async def test_an_attachment_is_changed_by_its_author_or_a_manager(client: Any) -> None:
    rep, account = await rep_with_account(client)
    mate = await login_as(client, "rep", "north")
    manager = await login_as(client, "manager", "north")
    made = await make_attachment(client, rep, photo(5), account_id=account["id"])
    path = f"/api/attachments/{made['id']}"
    assert (
        await client.patch(path, json={"caption": "x"}, headers=mate.headers)
    ).status_code == 403
    assert (await client.delete(path, headers=mate.headers)).status_code == 403
    done = await client.patch(path, json={"caption": "By the manager"}, headers=manager.headers)
    assert done.status_code == 200 and done.json()["author_id"] == rep.user_id


# -- uploads ----------------------------------------------------------------------------


async def test_upload_stores_once_and_marks_every_row_with_the_hash(
    client: Any, settings: Settings
) -> None:
    rep, account = await rep_with_account(client)
    data = photo(6)
    first = await make_attachment(client, rep, data, account_id=account["id"])
    second = await make_attachment(client, rep, data, account_id=account["id"])
    response = await put_blob(client, rep, data)
    assert response.status_code == 201, response.text
    assert response.json() == {"sha256": sha256_of(data), "media_type": "image/jpeg",
                               "bytes": len(data), "stored": True}  # fmt: skip
    again = await put_blob(client, rep, data)
    assert again.status_code == 200 and again.json()["stored"] is False
    assert (await row(client, rep, first["id"]))["uploaded"] is True
    assert (await row(client, rep, second["id"]))["uploaded"] is True
    later = await make_attachment(client, rep, data, account_id=account["id"])
    assert later["uploaded"] is True  # the server holds the bytes already
    files = stored_files(settings)
    assert len(files) == 1 and files[0].read_bytes() == data
    assert len(await blob_rows()) == 1
    read = await client.get(f"/api/attachments/blobs/{sha256_of(data)}", headers=rep.headers)
    assert read.status_code == 200 and read.content == data
    assert read.headers["content-type"] == "image/jpeg"
    assert "max-age=31536000" in read.headers["cache-control"]
    assert "immutable" in read.headers["cache-control"]
    assert read.headers["etag"] == f'"{sha256_of(data)}"'
    cached = await client.get(
        f"/api/attachments/blobs/{sha256_of(data)}",
        headers={**rep.headers, "If-None-Match": read.headers["etag"]},
    )
    assert cached.status_code == 304 and cached.content == b""


async def test_every_type_of_attachment_is_taken(client: Any) -> None:
    rep, account = await rep_with_account(client)
    samples = {
        "image/jpeg": photo(7),
        "image/png": photo(7, kind="PNG"),
        "image/webp": photo(7, kind="WEBP"),
        **SOUNDS,
    }
    for media_type, data in samples.items():
        await make_attachment(client, rep, data, media_type, account_id=account["id"])
        sent_as = media_type + (";codecs=opus" if media_type == "audio/webm" else "")
        response = await put_blob(client, rep, data, sent_as)
        assert response.status_code == 201, (media_type, response.text)
        read = await client.get(f"/api/attachments/blobs/{sha256_of(data)}", headers=rep.headers)
        assert read.content == data and read.headers["content-type"] == media_type


async def test_bad_uploads_are_refused_and_store_nothing(client: Any, settings: Settings) -> None:
    rep, account = await rep_with_account(client)
    jpeg, png = photo(8), photo(8, kind="PNG")
    noise = os.urandom(3000)
    for data, media_type in ((jpeg, "image/jpeg"), (png, "image/jpeg"), (noise, "image/jpeg"),
                             (b"hello there", "audio/ogg"), (png, "image/png")):  # fmt: skip
        await make_attachment(client, rep, data, media_type, account_id=account["id"])
    cases = [
        # (bytes, Content-Type, the hash named, status, error)
        (jpeg, "image/gif", "", 415, "unsupported_media_type"),
        (jpeg, "text/plain", "", 415, "unsupported_media_type"),
        (jpeg, "", "", 415, "unsupported_media_type"),
        (jpeg + b"x", "image/jpeg", sha256_of(jpeg), 422, "hash_mismatch"),
        (b"", "image/jpeg", sha256_of(jpeg), 422, "hash_mismatch"),
        (png, "image/jpeg", "", 422, "wrong_content"),  # a PNG sent as a JPEG
        (noise, "image/jpeg", "", 422, "wrong_content"),
        (b"hello there", "audio/ogg", "", 422, "wrong_content"),
        (png, "audio/ogg", "", 422, "type_mismatch"),  # its row says image/png
        (photo(9), "image/jpeg", "", 404, "not_found"),  # no row names it
        (jpeg, "image/jpeg", "not-a-hash", 400, "malformed"),
        (jpeg, "image/jpeg", sha256_of(jpeg).upper(), 400, "malformed"),
    ]
    seq = await db.fetch("SELECT value FROM sync_meta WHERE key = 'seq'")
    for data, media_type, sha, status, error in cases:
        response = await put_blob(client, rep, data, media_type, sha)
        assert response.status_code == status, (error, response.text)
        assert response.json()["error"] == error, response.text
        assert response.json()["detail"]
    assert await blob_rows() == []
    assert stored_files(settings) == []
    assert await db.fetch("SELECT value FROM sync_meta WHERE key = 'seq'") == seq


async def test_uploads_past_10_mib_are_refused(client: Any, settings: Settings) -> None:
    rep, account = await rep_with_account(client)
    big = b"\xff\xd8\xff" + b"\0" * (10 * MIB)
    await make_attachment(
        client, rep, big[: 10 * MIB], account_id=account["id"]
    )  # a row may name up to 10 MiB; the upload sends one byte more
    named = sha256_of(big[: 10 * MIB])
    response = await put_blob(client, rep, big, "image/jpeg", named)
    assert response.status_code == 413 and response.json()["error"] == "too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for _ in range(11):
            yield b"\0" * MIB

    response = await client.put(
        f"/api/attachments/blobs/{named}",
        content=chunks(),
        headers={**rep.headers, "Content-Type": "image/jpeg"},
    )
    assert response.status_code == 413, response.text
    assert await blob_rows() == [] and stored_files(settings) == []


async def test_the_same_bytes_sent_at_once_are_stored_once(client: Any, settings: Settings) -> None:
    rep, account = await rep_with_account(client)
    mate = await login_as(client, "rep", "north")
    data = photo(10, size=(800, 600))
    made = await make_attachment(client, rep, data, account_id=account["id"])
    responses = await asyncio.gather(
        *(put_blob(client, who, data) for who in (rep, mate, rep, mate, rep, rep))
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 200, 201]
    assert len(stored_files(settings)) == 1 and len(await blob_rows()) == 1
    changes = await db.fetch(
        "SELECT COUNT(*) AS n FROM history WHERE record_id = {} AND op = {}", made["id"], "update"
    )
    assert changes[0]["n"] == 1  # `uploaded` set once, by one write


async def test_the_bytes_are_read_only_by_those_who_see_a_row_with_them(client: Any) -> None:
    rep, account = await rep_with_account(client)
    mate = await login_as(client, "rep", "north")
    stranger = await login_as(client, "rep", "south")
    admin = await login_as(client, "admin", "hq")
    data = photo(11)
    made = await make_attachment(client, rep, data, account_id=account["id"])
    path = f"/api/attachments/blobs/{sha256_of(data)}"
    waiting = await client.get(path, headers=rep.headers)
    assert waiting.status_code == 404 and waiting.json()["error"] == "not_uploaded"
    assert (await put_blob(client, rep, data)).status_code == 201
    for who in (rep, mate, admin):
        assert (await client.get(path, headers=who.headers)).content == data
    assert (await client.get(path, headers=stranger.headers)).status_code == 404
    assert (await client.get(path)).status_code == 401
    bad = await client.get("/api/attachments/blobs/..%2F..%2Fetc", headers=rep.headers)
    assert bad.status_code == 404
    # The stranger's own row naming the same bytes lets them read them: they hold them.
    theirs = await make_account(client, stranger, name="Ailleurs")
    await make_attachment(client, stranger, data, account_id=theirs["id"])
    assert (await client.get(path, headers=stranger.headers)).content == data
    # A deleted row no longer opens the bytes.
    assert (
        await client.delete(f"/api/attachments/{made['id']}", headers=rep.headers)
    ).status_code == 204
    assert (await client.get(path, headers=mate.headers)).status_code == 404


# -- sync -------------------------------------------------------------------------------


async def test_attachment_rows_sync_and_uploaded_reaches_phones(client: Any) -> None:
    rep = await login_as(client)
    mate = await login_as(client)
    stranger = await login_as(client, "rep", "south")
    phone, other, far = Device(client, rep), Device(client, mate), Device(client, stranger)
    account_id, visit_id, attachment_id = new_id(), new_id(), new_id()
    data = photo(12)
    answer = await phone.sync(
        phone.write("accounts", account_id, {"name": "Hopper"}),
        phone.write("visits", visit_id, {"account_id": account_id,
                                         "started_at": "2026-12-01T09:00:00Z"}),
        phone.write("attachments", attachment_id, {
            "visit_id": visit_id, "sha256": sha256_of(data), "media_type": "image/jpeg",
            "bytes": len(data), "captured_at": "2026-12-01T09:05:00Z", "lat": 45.76, "lng": 4.84,
        }),
    )  # fmt: skip
    assert [r["status"] for r in answer["ack"]["results"]] == ["applied"] * 3
    await other.sync()
    await far.sync()
    pulled = other.rows[("attachments", attachment_id)]
    assert pulled is not None
    assert pulled["account_id"] == account_id and pulled["author_id"] == rep.user_id
    assert pulled["uploaded"] is False
    assert ("attachments", attachment_id) not in far.rows
    # A phone may not say it uploaded.
    refused = await phone.sync(phone.write("attachments", attachment_id, {"uploaded": True}))
    assert refused["ack"]["results"][0]["status"] == "rejected"
    assert (await put_blob(client, rep, data)).status_code == 201
    await other.sync()
    assert other.rows[("attachments", attachment_id)]["uploaded"] is True  # type: ignore[index]
    await far.sync()
    assert ("attachments", attachment_id) not in far.rows


async def test_an_attachment_moves_and_goes_with_its_account(client: Any) -> None:
    rep, account = await rep_with_account(client)
    admin = await login_as(client, "admin", "hq")
    south = await login_as(client, "rep", "south")
    made = await make_attachment(client, rep, photo(13), account_id=account["id"])
    moved = await client.post(
        f"/api/accounts/{account['id']}/reassign",
        json={"team_id": south.team_id},
        headers=admin.headers,
    )
    assert moved.status_code == 200, moved.text
    assert (
        await client.get(f"/api/attachments/{made['id']}", headers=rep.headers)
    ).status_code == 404
    assert (await row(client, south, made["id"]))["account_id"] == account["id"]
    gone = await client.delete(f"/api/accounts/{account['id']}", headers=admin.headers)
    assert gone.status_code == 204
    assert (
        await client.get(f"/api/attachments/{made['id']}", headers=south.headers)
    ).status_code == 404


# -- erasure's hook ------------------------------------------------------------------------


async def test_forget_blob_deletes_bytes_no_live_row_names(client: Any, settings: Settings) -> None:
    rep, account = await rep_with_account(client)
    data = photo(14)
    made = await make_attachment(client, rep, data, account_id=account["id"])
    assert (await put_blob(client, rep, data)).status_code == 201
    assert await forget_blob(sha256_of(data)) is False  # a live row names them
    assert len(stored_files(settings)) == 1
    await client.delete(f"/api/attachments/{made['id']}", headers=rep.headers)
    assert await forget_blob(sha256_of(data)) is True
    assert stored_files(settings) == [] and await blob_rows() == []
    assert await forget_blob("not a hash") is False
    # Sent again later, they are stored again.
    again = await make_attachment(client, rep, data, account_id=account["id"])
    assert again["uploaded"] is False
    assert (await put_blob(client, rep, data)).status_code == 201
