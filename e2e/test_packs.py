"""A first sync's packs (docs/pwa.md, "A first sync's packs"): a first sync stores its rows
many to a record, every read of a table sees them as rows, the newest copy of a row wins, a
deleted row leaves its packs, and the sync worker moves them into their tables afterwards
without changing what any read answers. In real Chromium, through the app's own modules."""

from __future__ import annotations

import asyncio
from typing import Any

from e2e.conftest import Server
from e2e.pages import Phones, Rest

# Run in the page: js/db.js's handles over packs written by hand, then unpacked.
SEMANTICS = """
async () => {
  const db = await import("/js/db.js");
  const row = (id, more) => ({ id, _base: true, _seq: 1, ...more });
  await db.write(["accounts", "visits", "packs"], async (s) => {
    const key = await db.packKeys(s);
    const add = (table, rows) => s.packs.add({ key: key(), table, rows });
    add("accounts", [row("a1", { name: "old" }), row("a2", { name: "two" })]);
    add("visits", [row("v1", { account_id: "a1" }), row("v2", { account_id: "a2" })]);
    add("accounts", [row("a1", { name: "new" }), row("a3", { name: "packed" })]);
    add("notes", ["n1", "n2", "n3", "n4"].map((id) => row(id, {})));
    await s.accounts.put(row("a3", { name: "own" })); // the store's own row is newer
  });
  const seen = {};
  const look = async (label) => {
    seen[label] = await db.read(["accounts", "visits"], async (s) => ({
      a1: await s.accounts.get("a1"),
      a3: ((await s.accounts.get("a3")) || {}).name,
      missing: (await s.accounts.get("zz")) === undefined,
      all: (await s.accounts.getAll()).map((r) => `${r.id}:${r.name}`),
      count: await s.accounts.count(),
      ofA1: (await s.visits.index("account_id").getAll("a1")).map((r) => r.id),
      ofA2: (await s.visits.index("account_id").getAllKeys("a2")),
      countA2: await s.visits.index("account_id").count("a2"),
    }));
  };
  await look("packed");
  // A row read is the caller's own: changing it changes nothing kept.
  const mine = await db.read(["accounts"], (s) => s.accounts.get("a1"));
  mine.name = "changed";
  seen.again = (await db.read(["accounts"], (s) => s.accounts.get("a1"))).name;
  // A packed visit moved to another account (its row now in the store), a packed account deleted.
  await db.write(["visits", "accounts"], async (s) => {
    await s.visits.put(row("v1", { account_id: "a2" }));
    await s.accounts.delete("a2");
  });
  await look("changed");
  // Rows of one pack deleted one after another, in one transaction and in two.
  await db.write(["notes"], async (s) => {
    await s.notes.delete("n1");
    await s.notes.delete("n2");
  });
  await db.write(["notes"], (s) => s.notes.delete("n3"));
  seen.notes = await db.read(["notes"], async (s) => (await s.notes.getAll()).map((r) => r.id));
  seen.packsAfterDelete = await db.read(["packs"], (s) => s.packs.getAll());
  // Unpacked (the notes' pack, then the newest accounts' one: a1 into its store) while
  // what was read of the packs is kept, then deleted: no older copy of it comes back.
  await db.read(["accounts"], (s) => s.accounts.getAll());
  await db.unpackNewest();
  await db.unpackNewest();
  // a3's packed copy was in that pack too: a thread that read it must not show it again.
  await db.write(["accounts"], (s) => s.accounts.delete("a3"));
  seen.a3 = await db.read(["accounts"], async (s) => (await s.accounts.getAll()).map((r) => r.id));
  await db.write(["accounts"], (s) => s.accounts.delete("a1"));
  seen.deletedAfterUnpack = await db.read(["accounts"], async (s) => ({
    all: (await s.accounts.getAll()).map((r) => r.id),
    gone: (await s.accounts.get("a1")) === undefined && (await s.accounts.get("a3")) === undefined,
  }));
  let steps = 2;
  while (await db.unpackNewest()) steps += 1;
  await look("unpacked");
  seen.steps = steps;
  seen.packsLeft = await db.read(["packs"], (s) => s.packs.count());
  seen.notesUnpacked = await db.read(["notes"], async (s) => s.notes.ownKeys());
  seen.own = await db.read(["accounts"], async (s) => (await s.accounts.ownKeys()).length);
  return seen;
}
"""


async def test_packed_rows_read_as_rows_and_unpack_unchanged(
    server: Server, phones: Phones
) -> None:
    app = await phones.open(server.url)
    await app.open()  # signed out: nothing syncs, the stores are empty
    seen: dict[str, Any] = await app.page.evaluate(SEMANTICS)
    packed = seen["packed"]
    assert packed["a1"]["name"] == "new"  # the newest pack's copy
    assert packed["a3"] == "own"  # the store's own row over a packed copy
    assert packed["missing"]
    assert packed["all"] == ["a1:new", "a2:two", "a3:own"]  # in key order, as a store
    assert packed["count"] == 3
    assert packed["ofA1"] == ["v1"]
    assert packed["ofA2"] == ["v2"]
    assert packed["countA2"] == 1
    assert seen["again"] == "new"
    changed = seen["changed"]
    assert changed["all"] == ["a1:new", "a3:own"]
    assert changed["count"] == 2
    assert changed["ofA1"] == []  # the packed copy under a1 is older than the store's row
    assert changed["ofA2"] == ["v1", "v2"]
    assert changed["countA2"] == 2
    assert not any(r["id"] == "a2" for p in seen["packsAfterDelete"] for r in p["rows"])
    assert seen["notes"] == ["n4"]
    assert seen["a3"] == ["a1"]
    assert seen["deletedAfterUnpack"] == {"all": [], "gone": True}
    # Unpacked, one pack a step: the same answers, all from the stores.
    assert seen["steps"] == 5  # the four packs, and the empty one a3's deletion wrote
    assert seen["packsLeft"] == 0
    assert seen["unpacked"]["all"] == []
    assert seen["unpacked"]["count"] == 0
    assert seen["unpacked"]["ofA2"] == ["v1", "v2"]
    assert seen["own"] == 0
    assert seen["notesUnpacked"] == ["n4"]


PACKS = """
async () => {
  const db = await import("/js/db.js");
  return db.read(["packs", "accounts", "visits"], async (s) => ({
    packs: await s.packs.count(),
    accounts: (await s.accounts.ownKeys()).length,
    visits: (await s.visits.ownKeys()).length,
  }));
}
"""


async def test_a_first_sync_is_packed_then_unpacked(server: Server, phones: Phones) -> None:
    server.add_user("alice")
    alice = await Rest.login(server.url, "alice")
    try:
        for i in range(120):
            made = await alice.create("accounts", name=f"Shop {i:03}", city="Lyon")
            if i % 2 == 0:
                await alice.create("visits", account_id=made["id"], outcome="met",
                                   started_at="2026-12-01T09:00:00Z")  # fmt: skip
    finally:
        await alice.close()
    app = await phones.signed_in(server.url, "alice", controlled=False)
    packed = await app.page.evaluate(
        "() => performance.getEntriesByName('fieldcrm:packed').reduce((n, m) => n + m.detail, 0)"
    )
    assert packed == 180  # every row of the first sync
    assert len(await app.rows("accounts")) == 120
    assert len(await app.rows("visits")) == 60
    # The sync worker unpacks after its pull: every row in its table's own store, no pack left.
    stored: dict[str, int] = {}
    for _ in range(100):
        stored = await app.page.evaluate(PACKS)
        if stored["packs"] == 0:
            break
        await asyncio.sleep(0.1)
    assert stored == {"packs": 0, "accounts": 120, "visits": 60}
    names = sorted(r["name"] for r in await app.rows("accounts"))
    assert names == [f"Shop {i:03}" for i in range(120)]


DONE_FROM_A_NOTIFICATION = """
async (id) => {
  const db = await import("/js/db.js");
  await db.write(["packs"], async (s) => {
    const key = await db.packKeys(s);
    const task = { id, title: "Call back", done: false, _base: true, _seq: 4 };
    s.packs.add({ key: key(), table: "tasks", rows: [task] });
  });
  const registration = await navigator.serviceWorker.ready;
  const channel = new MessageChannel();
  const answer = new Promise((resolve) => { channel.port1.onmessage = (e) => resolve(e.data); });
  const message = { type: "REMINDER_ACTION", action: "done", reminder: { task_id: id } };
  registration.active.postMessage(message, [channel.port2]);
  const outcome = await answer;
  const [row, outbox] = await db.read(["tasks", "outbox"],
    (s) => Promise.all([s.tasks.get(id), s.outbox.getAll()]));
  return { outcome, row, outbox };
}
"""


async def test_a_reminders_done_finds_its_task_in_a_pack(server: Server, phones: Phones) -> None:
    """The notification's Done (pwa/sw.js) right after a first sync, before its unpacking."""
    app = await phones.open(server.url)
    await app.open()
    await app.wait_controlled()
    task_id = "7d1c1f5e-4c1a-4a8e-9a41-3f0c2b7d9e10"
    got: dict[str, Any] = await app.page.evaluate(DONE_FROM_A_NOTIFICATION, task_id)
    assert got["outcome"] == {"ok": True, "outcome": "saved"}
    assert got["row"]["done"] is True
    assert [(e["id"], e["fields"], e["base_seq"]) for e in got["outbox"]] == [
        (task_id, {"done": True}, 4)
    ]
