"""A reset (a cursor the server cannot honour: a database restored from elsewhere, say)
pages the rep's whole scope again, and what it did not send leaves the phone. A row with
writes still to send stays for them; if the server then refuses them (the record was
deleted meanwhile), the row goes too, and the refused write is shown to the rep."""

from __future__ import annotations

from playwright.async_api import expect

from e2e.conftest import Server
from e2e.pages import Phones, Rest

SET_CURSOR = """async (cursor) => {
  const db = await new Promise((resolve, reject) => {
    const opening = indexedDB.open("fieldcrm");
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error);
  });
  await new Promise((resolve, reject) => {
    const tx = db.transaction("meta", "readwrite");
    tx.objectStore("meta").put(cursor, "cursor");
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}"""


async def test_a_row_kept_for_its_writes_goes_when_the_server_refuses_them(
    server: Server, phones: Phones
) -> None:
    server.add_user("alice", team="north")
    server.add_user("bob", team="north")
    rest = await Rest.login(server.url, "alice")
    try:
        gone = await rest.create("accounts", name="Closed Shop", phone="+33 1 00 00 00 01")
        kept = await rest.create("accounts", name="Open Shop", phone="+33 1 00 00 00 02")
        app = await phones.signed_in(server.url, "bob", controlled=False)
        await app.account.open(gone["id"])

        # Deleted on the server; the phone has not heard, and its cursor is one the
        # server does not know: its next sync is a reset.
        await rest.delete("accounts", gone["id"])
        await app.page.evaluate(SET_CURSOR, "1.another-database.7.0.0")

        # The rep edits the deleted account while that reset is on its way, so the reset
        # ends with the write still in the outbox.
        async with app.sync_in_flight():
            await app.save("accounts", gone["id"], phone="+33 6 99 99 99 99")
            await app.expect_pending(1)
        [row] = [r for r in await app.rows("accounts") if r["id"] == gone["id"]]
        assert row["phone"] == "+33 6 99 99 99 99"  # kept for its write

        # The write goes out and is refused: the row goes with it, nothing comes back.
        status = await app.sync()
        assert (status["state"], status["pending"]) == ("synced", 0), status
        assert [r["id"] for r in await app.rows("accounts")] == [kept["id"]]
        # Kept whole by the server (rule 12), whose row replaced the phone's own copy.
        [refused] = await app.rows("rejections")
        assert (refused["record_id"], refused["error"]) == (gone["id"], "deleted")
        assert refused["fields"] == {"phone": "+33 6 99 99 99 99"}
        assert refused["_about"]["account_name"] == "Closed Shop"
        assert await app.meta("rejected") == []
        await app.accounts.open()
        await expect(app.accounts.row(gone["id"])).to_have_count(0)
        await expect(app.accounts.row(kept["id"])).to_have_count(1)
    finally:
        await rest.close()
