"""Team scoping through every route: a rep (or manager) of team A can neither read nor write
team B's records. The routes come from the app itself, and every /api/ route must have a
probe in PROBES, so a new route cannot escape this test."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server import db
from server.core.fields import CHILD_TABLES, TABLE_FIELDS
from server.transfer import importing
from tests.factories import (
    Login,
    child_fields,
    login_as,
    make_account,
    make_attachment,
    make_child,
    new_id,
    photo,
    put_blob,
    served_api_routes,
    sha256_of,
)

RECORD_TABLES = list(TABLE_FIELDS)
LYON = (45.7640, 4.8357)


@dataclass
class World:
    """Two teams with a bit of everything each, plus an admin."""

    rep_a: Login
    rep_a2: Login
    manager_a: Login
    rep_b: Login
    manager_b: Login
    admin: Login
    a: dict[str, str] = field(default_factory=dict)  # table -> one of team A's record ids
    b: dict[str, str] = field(default_factory=dict)  # table -> one of team B's record ids
    b_loose_task: str = ""  # a task without an account, assigned to rep_b
    b_endpoint: str = ""  # rep_b's push subscription, once made

    @property
    def outsiders(self) -> list[Login]:
        """Team A's people: none of them may see or touch team B's records."""
        return [self.rep_a, self.manager_a]

    def b_ids(self) -> set[str]:
        return {*self.b.values(), self.b_loose_task}


async def sync(client: Any, who: Login, mutations: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"protocol": 1, "client_id": new_id(), "cursor": None, "mutations": mutations}
    response = await client.post("/api/sync/v1", json=body, headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def build_world(client: Any) -> World:
    world = World(
        rep_a=await login_as(client, "rep", "north"),
        rep_a2=await login_as(client, "rep", "north"),
        manager_a=await login_as(client, "manager", "north"),
        rep_b=await login_as(client, "rep", "south"),
        manager_b=await login_as(client, "manager", "south"),
        admin=await login_as(client, "admin", "hq"),
    )
    for owner, ids in ((world.rep_a, world.a), (world.rep_b, world.b)):
        account = await make_account(
            client, owner, name=f"Hopper {owner.username}", city="Lyon", lat=LYON[0], lng=LYON[1]
        )
        ids["accounts"] = account["id"]
        for table in CHILD_TABLES:
            ids[table] = (await make_child(client, owner, table, account["id"]))["id"]
        # A write that loses to the name set above leaves a conflict in the account's scope.
        stale = {
            "mid": 1,
            "table": "accounts",
            "id": account["id"],
            "op": "upsert",
            "fields": {"name": "Stale name"},
            "base_seq": None,
            "hlc": [946_684_800_001, 0],
        }
        result = (await sync(client, owner, [stale]))["ack"]["results"][0]
        assert result["status"] == "merged", result
        rows = await db.fetch("SELECT id FROM conflicts WHERE record_id = {}", account["id"])
        ids["conflicts"] = str(rows[0]["id"])
        # A write the server refuses is kept where its writer and their managers see it.
        refused = {**stale, "fields": {"nickname": "x"}, "hlc": [946_684_800_002, 0]}
        result = (await sync(client, owner, [refused]))["ack"]["results"][0]
        assert result["status"] == "rejected", result
        rows = await db.fetch("SELECT id FROM rejections WHERE user_id = {}", owner.user_id)
        ids["rejections"] = str(rows[0]["id"])
    loose = await make_child(client, world.rep_b, "tasks", account_id=None)
    world.b_loose_task = loose["id"]
    return world


async def snapshot(table: str, record_id: str) -> dict[str, Any] | None:
    rows = await db.fetch(f"SELECT * FROM {table} WHERE id = {{}}", record_id)
    return rows[0] if rows else None


async def current_seq() -> int:
    rows = await db.fetch("SELECT value FROM sync_meta WHERE key = {}", "seq")
    return int(rows[0]["value"])


async def count(table: str) -> int:
    return int((await db.fetch(f"SELECT COUNT(*) AS n FROM {table}"))[0]["n"])


def expect(response: Any, *statuses: int) -> None:
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url.path} answered "
        f"{response.status_code}, expected {statuses}: {response.text[:300]}"
    )
    body = response.json()
    assert set(body) >= {"error", "detail"}, body


# -- the probes: one per (method, route) --------------------------------------------------

Probe = Callable[[Any, World], Awaitable[None]]
PROBES: dict[tuple[str, str], Probe] = {}
ONE = "{record_id:str}"


def listed_ids(page: dict[str, Any]) -> set[str]:
    return {item["id"] for item in page["items"]}


def probe_list(table: str) -> Probe:
    async def run(client: Any, world: World) -> None:
        b_id = world.b[table]
        for who in world.outsiders:
            for query in ("", "?q=hopper", "?limit=200", f"?account_id={world.b['accounts']}"):
                if query.startswith("?account_id") and table == "accounts":
                    continue
                response = await client.get(f"/api/{table}{query}", headers=who.headers)
                assert response.status_code == 200, response.text
                leaked = listed_ids(response.json()) & world.b_ids()
                assert not leaked, f"{who.role} of A lists B's {table}{query}"
            everything = (await client.get(f"/api/{table}", headers=who.headers)).json()
            assert world.a[table] in listed_ids(everything), f"A's own {table} missing"
        mine = (await client.get(f"/api/{table}", headers=world.rep_b.headers)).json()
        assert b_id in listed_ids(mine)

    return run


def probe_read(table: str) -> Probe:
    async def run(client: Any, world: World) -> None:
        ids = [world.b[table]] + ([world.b_loose_task] if table == "tasks" else [])
        for who in world.outsiders:
            for record_id in ids:
                expect(await client.get(f"/api/{table}/{record_id}", headers=who.headers), 404)
        assert (await client.get(f"/api/{table}/{ids[0]}", headers=world.rep_b.headers)).is_success

    return run


PATCHES = {
    "accounts": {"name": "Taken"},
    "contacts": {"name": "Taken"},
    "visits": {"summary": "Taken"},
    "notes": {"body": "Taken"},
    "tasks": {"title": "Taken", "done": True},
    "deals": {"stage": "won"},
    "conflicts": {"resolved": True},
    "rejections": {"resolved": True},
    "attachments": {"caption": "Taken"},
}


def probe_patch(table: str) -> Probe:
    async def run(client: Any, world: World) -> None:
        ids = [world.b[table]] + ([world.b_loose_task] if table == "tasks" else [])
        for who in world.outsiders:
            for record_id in ids:
                before, seq = await snapshot(table, record_id), await current_seq()
                response = await client.patch(
                    f"/api/{table}/{record_id}", json=PATCHES[table], headers=who.headers
                )
                expect(response, 404)
                assert await snapshot(table, record_id) == before
                assert await current_seq() == seq
            if table in CHILD_TABLES:
                # Nor can A move its own record under B's account.
                own = world.a[table]
                before, seq = await snapshot(table, own), await current_seq()
                response = await client.patch(
                    f"/api/{table}/{own}",
                    json={"account_id": world.b["accounts"]},
                    headers=who.headers,
                )
                expect(response, 404, 422)
                assert await snapshot(table, own) == before
                assert await current_seq() == seq

    return run


def probe_delete(table: str) -> Probe:
    async def run(client: Any, world: World) -> None:
        ids = [world.b[table]] + ([world.b_loose_task] if table == "tasks" else [])
        for who in world.outsiders:
            for record_id in ids:
                before, seq = await snapshot(table, record_id), await current_seq()
                expect(await client.delete(f"/api/{table}/{record_id}", headers=who.headers), 404)
                after = await snapshot(table, record_id)
                assert after == before and after is not None and not after["deleted"]
                assert await current_seq() == seq

    return run


def probe_create(table: str) -> Probe:
    async def run(client: Any, world: World) -> None:
        b_account = world.b["accounts"]
        if table in CHILD_TABLES:
            attempts = [(child_fields(table, b_account), (404,))]
        elif table == "accounts":
            attempts = [
                ({"name": "Planted", "owner_id": world.rep_b.user_id}, (403,)),
                ({"name": "Planted", "team_id": world.rep_b.team_id}, (403, 422)),
            ]
        else:
            attempts = [({"resolved": False}, (403, 422))]
        if table == "tasks":
            attempts.append(({"title": "Planted", "assignee_id": world.rep_b.user_id}, (403,)))
        for who in world.outsiders:
            for body, statuses in attempts:
                record_id, before, seq = new_id(), await count(table), await current_seq()
                response = await client.post(
                    f"/api/{table}", json={"id": record_id, **body}, headers=who.headers
                )
                expect(response, *statuses)
                assert await snapshot(table, record_id) is None
                assert await count(table) == before
                assert await current_seq() == seq

    return run


for _table in RECORD_TABLES:
    PROBES[("GET", f"/api/{_table}")] = probe_list(_table)
    PROBES[("GET", f"/api/{_table}/{ONE}")] = probe_read(_table)
    PROBES[("PATCH", f"/api/{_table}/{ONE}")] = probe_patch(_table)
    PROBES[("DELETE", f"/api/{_table}/{ONE}")] = probe_delete(_table)
    PROBES[("POST", f"/api/{_table}")] = probe_create(_table)


def probe(method: str, path: str) -> Callable[[Probe], Probe]:
    def register(run: Probe) -> Probe:
        PROBES[(method, path)] = run
        return run

    return register


@probe("POST", f"/api/accounts/{ONE}/reassign")
async def probe_reassign(client: Any, world: World) -> None:
    b_account = world.b["accounts"]
    for who, record_id, status in (
        (world.rep_a, world.a["accounts"], 403),  # reps never reassign, even their own
        (world.rep_a, b_account, 403),
        (world.manager_a, b_account, 404),  # a manager reassigns within what they see
    ):
        before, seq = await snapshot("accounts", record_id), await current_seq()
        response = await client.post(
            f"/api/accounts/{record_id}/reassign",
            json={"owner_id": who.user_id, "team_id": who.team_id},
            headers=who.headers,
        )
        expect(response, status)
        assert await snapshot("accounts", record_id) == before
        assert await current_seq() == seq


@probe("POST", f"/api/rejections/{ONE}/apply")
async def probe_apply_rejection(client: Any, world: World) -> None:
    for who, record_id, status in (
        (world.rep_a, world.a["rejections"], 403),  # reps never apply, even their own
        (world.rep_a, world.b["rejections"], 403),
        (world.manager_a, world.b["rejections"], 404),  # another team's: not seen
    ):
        before, seq = await snapshot("rejections", record_id), await current_seq()
        response = await client.post(
            f"/api/rejections/{record_id}/apply", json={}, headers=who.headers
        )
        expect(response, status)
        assert await snapshot("rejections", record_id) == before
        assert await current_seq() == seq


@probe("PUT", "/api/attachments/blobs/{sha256:str}")
@probe("GET", "/api/attachments/blobs/{sha256:str}")
async def probe_attachment_bytes(client: Any, world: World) -> None:
    """Team B's photo: team A can neither send its bytes nor read them, before or after
    B uploads them; nothing is stored for A's attempts."""
    data = photo(seed=secrets.randbelow(10**9))
    sha = sha256_of(data)
    await make_attachment(client, world.rep_b, data, account_id=world.b["accounts"])
    for who in world.outsiders:
        seq = await current_seq()
        expect(await put_blob(client, who, data), 404)
        assert await count("attachment_blobs") == 0 or not await db.fetch(
            "SELECT sha256 FROM attachment_blobs WHERE sha256 = {}", sha
        )
        assert await current_seq() == seq
        expect(await client.get(f"/api/attachments/blobs/{sha}", headers=who.headers), 404)
    assert (await put_blob(client, world.rep_b, data)).status_code == 201
    for who in world.outsiders:
        expect(await client.get(f"/api/attachments/blobs/{sha}", headers=who.headers), 404)
        seq = await current_seq()
        expect(await put_blob(client, who, data), 404)
        assert await current_seq() == seq
    mine = await client.get(f"/api/attachments/blobs/{sha}", headers=world.rep_b.headers)
    assert mine.status_code == 200 and mine.content == data


@probe("POST", "/api/sync/v1")
async def probe_sync(client: Any, world: World) -> None:
    b = world.b
    for who in world.outsiders:
        before = {table: await snapshot(table, record_id) for table, record_id in b.items()}
        contacts = await count("contacts")
        mutations = [
            {"table": "accounts", "id": b["accounts"], "op": "upsert", "fields": {"name": "X"}},
            {"table": "contacts", "id": b["contacts"], "op": "delete"},
            {
                "table": "contacts",
                "id": new_id(),
                "op": "upsert",
                "fields": child_fields("contacts", b["accounts"]),
            },
            {
                "table": "conflicts",
                "id": b["conflicts"],
                "op": "upsert",
                "fields": {"resolved": True},
            },
            {"table": "tasks", "id": world.b_loose_task, "op": "upsert", "fields": {"done": True}},
            {
                "table": "deals",
                "id": b["deals"],
                "op": "upsert",
                "fields": {"stage": "won"},
                "base_seq": 1,
            },
            {"table": "accounts", "id": b["accounts"], "op": "delete"},
        ]
        for mid, mutation in enumerate(mutations, start=1):
            mutation.update(mid=mid, hlc=[4_000_000_000_000, 0])
        answer = await sync(client, who, mutations)
        statuses = [
            (r["status"], (r["error"] or {}).get("error")) for r in answer["ack"]["results"]
        ]
        assert all(status == "rejected" for status, _ in statuses), statuses
        pulled = {change["id"] for change in answer["changes"]}
        leaked = pulled & world.b_ids()
        assert not leaked, "a sync pull hands out team B's records"
        assert world.a["accounts"] in pulled
        for table, record_id in b.items():
            assert await snapshot(table, record_id) == before[table], table
        assert await count("contacts") == contacts


@probe("GET", "/api/users")
async def probe_users(client: Any, world: World) -> None:
    response = await client.get("/api/users", headers=world.rep_a.headers)
    assert response.status_code == 200, response.text
    users = response.json()["users"]
    assert {u["team_id"] for u in users} == {world.rep_a.team_id}
    assert world.rep_b.user_id not in {u["id"] for u in users}


@probe("PATCH", "/api/users/{user_id:str}")
async def probe_change_user(client: Any, world: World) -> None:
    # Only an admin changes users: nobody of team A changes team B's, nor their own team's.
    before = await db.fetch("SELECT * FROM users ORDER BY id")
    for who in world.outsiders:
        for target in (world.rep_b, world.rep_a2):
            response = await client.patch(
                f"/api/users/{target.user_id}",
                json={"team_id": who.team_id, "role": "admin", "active": False},
                headers=who.headers,
            )
            expect(response, 403)
    assert await db.fetch("SELECT * FROM users ORDER BY id") == before


@probe("GET", "/api/teams")
async def probe_teams(client: Any, world: World) -> None:
    response = await client.get("/api/teams", headers=world.rep_a.headers)
    assert response.status_code == 200, response.text
    assert [t["id"] for t in response.json()["teams"]] == [world.rep_a.team_id]


@probe("GET", "/api/me")
async def probe_me(client: Any, world: World) -> None:
    response = await client.get("/api/me", headers=world.rep_a.headers)
    assert response.json()["user"]["id"] == world.rep_a.user_id


@probe("POST", "/api/auth/logout")
async def probe_logout(client: Any, world: World) -> None:
    # Logging out ends the caller's own token, nobody else's.
    extra = await client.post(
        "/api/auth/login", json={"username": world.rep_a.username, "password": "correct-horse-9"}
    )
    headers = {"Authorization": f"Bearer {extra.json()['token']}"}
    assert (await client.post("/api/auth/logout", headers=headers)).status_code == 204
    for who in (world.rep_a, world.rep_b):
        assert (await client.get("/api/me", headers=who.headers)).status_code == 200


@probe("POST", "/api/auth/login")
@probe("GET", "/api/health")
@probe("GET", "/api/push/vapid-public-key")
@probe("GET", "/api/config")
@probe("GET", "/api/tiles")
@probe("GET", "/api/tiles/{z:str}/{x:str}/{y:str}")
async def probe_no_records(client: Any, world: World) -> None:
    """Routes that hand out no team's records (login, health, the server's public key, the
    map's settings and the territory pack's tiles, the same for everyone)."""


@probe("POST", "/api/route")
async def probe_route(client: Any, world: World) -> None:
    """Another team's account is no stop of yours, and its name does not leak."""
    b_account = await snapshot("accounts", world.b["accounts"])
    assert b_account is not None
    for who in world.outsiders:
        response = await client.post(
            "/api/route",
            json={"start": {"lat": 48.85, "lng": 2.35}, "stops": [world.b["accounts"]]},
            headers=who.headers,
        )
        expect(response, 422)
        assert response.json()["error"] == "unknown_account"
        assert b_account["name"] not in response.text


async def calendar_feed_url(client: Any, who: Login) -> str:
    response = await client.post("/api/calendar/feed", json={}, headers=who.headers)
    assert response.status_code == 200, response.text
    return str(response.json()["url"])


@probe("POST", "/api/calendar/feed")
@probe("GET", "/api/calendar/feed")
@probe("DELETE", "/api/calendar/feed")
@probe("GET", "/api/calendar/{name:str}")
async def probe_calendar(client: Any, world: World) -> None:
    """A feed is its owner's: others can neither see, replace nor revoke it, and a feed
    holds none of another team's tasks."""
    b_url = await calendar_feed_url(client, world.rep_b)
    b_path = b_url[b_url.index("/api/") :]
    for who in world.outsiders:
        a_url = await calendar_feed_url(client, who)
        a_feed = await client.get(a_url[a_url.index("/api/") :])
        assert a_feed.status_code == 200, a_feed.text
        assert not any(record_id in a_feed.text for record_id in world.b_ids())
        assert (await client.delete("/api/calendar/feed", headers=who.headers)).status_code == 204
    assert (await client.get("/api/calendar/feed", headers=world.rep_b.headers)).json()["active"]
    assert (await client.get(b_path)).status_code == 200


@probe("GET", "/api/export/{name:str}")
async def probe_export(client: Any, world: World) -> None:
    """An export holds only what the caller sees."""
    for who in world.outsiders:
        for name in ("accounts.csv", "contacts.csv", "visits.csv", "notes.csv", "tasks.csv",
                     "deals.csv", "contacts.vcf"):  # fmt: skip
            response = await client.get(f"/api/export/{name}", headers=who.headers)
            assert response.status_code == 200, response.text
            assert not any(record_id in response.text for record_id in world.b_ids()), name
        own = await client.get("/api/export/accounts.csv", headers=who.headers)
        assert world.a["accounts"] in own.text
    mine = await client.get("/api/export/accounts.csv", headers=world.rep_b.headers)
    assert world.b["accounts"] in mine.text


@probe("GET", "/api/history/{table:str}/{record_id:str}")
async def probe_history(client: Any, world: World) -> None:
    """A record's history only to who sees the record (SPEC section 11)."""
    tables = [t for t in RECORD_TABLES if t not in ("conflicts", "rejections")]
    for who in world.outsiders:
        for table in tables:
            ids = [world.b[table]] + ([world.b_loose_task] if table == "tasks" else [])
            for record_id in ids:
                response = await client.get(
                    f"/api/history/{table}/{record_id}", headers=who.headers
                )
                expect(response, 404)
        own = await client.get(f"/api/history/accounts/{world.a['accounts']}", headers=who.headers)
        assert own.status_code == 200 and own.json()["entries"], own.text
    for table in tables:
        path = f"/api/history/{table}/{world.b[table]}"
        mine = await client.get(path, headers=world.rep_b.headers)
        assert mine.status_code == 200 and mine.json()["entries"], mine.text


@probe("GET", "/api/privacy/export")
async def probe_privacy_export(client: Any, world: World) -> None:
    """A record's export (SPEC section 12) only to a manager who sees it, or an admin."""
    for table in ("accounts", "contacts"):
        path = "/api/privacy/export?table={}&id={}"
        response = await client.get(path.format(table, world.b[table]), headers=world.rep_a.headers)
        expect(response, 403)
        response = await client.get(
            path.format(table, world.b[table]), headers=world.manager_a.headers
        )
        expect(response, 404)
        own = await client.get(path.format(table, world.a[table]), headers=world.manager_a.headers)
        assert own.status_code == 200, own.text
        assert not any(record_id in own.text for record_id in world.b_ids())
        mine = await client.get(path.format(table, world.b[table]), headers=world.manager_b.headers)
        assert mine.status_code == 200 and world.b[table] in mine.text


@probe("POST", "/api/privacy/erase")
async def probe_privacy_erase(client: Any, world: World) -> None:
    """Only an admin erases (the world stays whole: the erasure itself is tested in
    tests/integration/test_privacy.py)."""
    for who in (*world.outsiders, world.rep_b, world.manager_b):
        for table in ("accounts", "contacts"):
            before, seq = await snapshot(table, world.b[table]), await current_seq()
            response = await client.post(
                "/api/privacy/erase",
                json={"table": table, "id": world.b[table]},
                headers=who.headers,
            )
            expect(response, 403)
            assert await snapshot(table, world.b[table]) == before
            assert await current_seq() == seq


@probe("POST", "/api/import/{name:str}")
@probe("GET", "/api/import/{name:str}")
@probe("DELETE", "/api/import/{name:str}")
async def probe_import(client: Any, world: World) -> None:
    """Reps may not import; a manager's import writes into their own team only, matches
    against what they see, and another team's manager can neither read nor revert it."""
    body = f"id,name,owner_id\n{world.b['accounts']},Taken,\nNew one,,{world.rep_b.user_id}\n"
    headers = {"Content-Type": "text/csv"}
    for query in ("", "?background=true", "?background=true&dry_run=true"):
        response = await client.post(
            f"/api/import/accounts{query}", content=body, headers={**world.rep_a.headers, **headers}
        )
        expect(response, 403)
    before, seq = await snapshot("accounts", world.b["accounts"]), await current_seq()
    response = await client.post(
        "/api/import/accounts?on_duplicate=update",
        content="id,name\n" + world.b["accounts"] + ",Taken\n",
        headers={**world.manager_a.headers, **headers},
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 0 and response.json()["errors"], response.text
    assert await snapshot("accounts", world.b["accounts"]) == before
    response = await client.post(
        "/api/import/accounts",
        content=f"name,owner\nNew one,{world.rep_b.username}\n",
        headers={**world.manager_a.headers, **headers},
    )
    assert response.json()["created"] == 0, response.text
    assert await current_seq() == seq
    response = await client.post(
        "/api/import/contacts",
        content=f"name,account\nSpy,{world.b['accounts']}\nSpy,Hopper {world.rep_b.username}\n",
        headers={**world.manager_a.headers, **headers},
    )
    assert response.json()["created"] == 0 and len(response.json()["errors"]) == 2
    b_import = await client.post(
        "/api/import/accounts",
        content="name\nB's own\n",
        headers={**world.manager_b.headers, **headers},
    )
    b_id = b_import.json()["import_id"]
    b_job = await client.post(
        "/api/import/accounts?background=true",
        content="name\nB's job\n",
        headers={**world.manager_b.headers, **headers},
    )
    assert b_job.status_code == 202, b_job.text
    await importing.wait_for_imports()
    for who in world.outsiders:
        job = f"/api/import/{b_job.json()['import_id']}"
        expect(await client.get(job, headers=who.headers), 404, 403)
    for who in world.outsiders:
        expect(await client.get(f"/api/import/{b_id}", headers=who.headers), 404, 403)
        expect(await client.delete(f"/api/import/{b_id}", headers=who.headers), 404, 403)
    assert (await client.get(f"/api/import/{b_id}", headers=world.manager_b.headers)).is_success


@probe("GET", "/api/duplicates/{table:str}")
async def probe_duplicates(client: Any, world: World) -> None:
    """Groups hold only records the caller sees."""
    for who in world.outsiders:
        for table in ("accounts", "contacts"):
            response = await client.get(f"/api/duplicates/{table}", headers=who.headers)
            assert response.status_code == 200, response.text
            ids = {i for group in response.json()["groups"] for i in group["ids"]}
            assert not ids & world.b_ids()


@probe("POST", "/api/merge")
@probe("POST", "/api/merge/{merge_id:str}/undo")
async def probe_merge(client: Any, world: World) -> None:
    """Team A can merge nothing of team B's, into or out of its own, nor undo B's merges;
    a rep merges no accounts."""
    mine = await make_account(client, world.manager_a, name="Mine")
    theirs = await make_account(client, world.manager_b, name="Theirs")
    bodies = [
        {"table": "accounts", "survivor_id": mine["id"], "merged_ids": [world.b["accounts"]]},
        {"table": "accounts", "survivor_id": world.b["accounts"], "merged_ids": [mine["id"]]},
        {"table": "accounts", "survivor_id": theirs["id"], "merged_ids": [world.b["accounts"]]},
        {"table": "contacts", "survivor_id": world.a["contacts"],
         "merged_ids": [world.b["contacts"]]},
    ]  # fmt: skip
    for who in world.outsiders:
        for body in bodies:
            before, seq = await snapshot("accounts", world.b["accounts"]), await current_seq()
            expect(await client.post("/api/merge", json=body, headers=who.headers), 403, 404)
            assert await snapshot("accounts", world.b["accounts"]) == before
            assert await current_seq() == seq
    own = {"table": "accounts", "survivor_id": mine["id"], "merged_ids": [world.a["accounts"]]}
    expect(await client.post("/api/merge", json=own, headers=world.rep_a.headers), 403)
    b_merge = await client.post(
        "/api/merge",
        json={"table": "accounts", "survivor_id": world.b["accounts"],
              "merged_ids": [theirs["id"]]},
        headers=world.manager_b.headers,
    )  # fmt: skip
    assert b_merge.status_code == 200, b_merge.text
    b_id = b_merge.json()["merge_id"]
    for who in world.outsiders:
        expect(await client.post(f"/api/merge/{b_id}/undo", headers=who.headers), 403, 404)
    undone = await client.post(f"/api/merge/{b_id}/undo", headers=world.manager_b.headers)
    assert undone.status_code == 200, undone.text


def push_subscription(endpoint: str) -> dict[str, Any]:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )

    def b64url(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {
        "endpoint": endpoint,
        "keys": {"p256dh": b64url(point), "auth": b64url(secrets.token_bytes(16))},
    }


async def subscription_owner(endpoint: str) -> str | None:
    rows = await db.fetch("SELECT user_id FROM push_subscriptions WHERE endpoint = {}", endpoint)
    return str(rows[0]["user_id"]) if rows else None


async def b_subscribed(client: Any, world: World) -> str:
    if not world.b_endpoint:
        endpoint = f"https://fcm.googleapis.com/fcm/send/{secrets.token_urlsafe(16)}"
        response = await client.post(
            "/api/push/subscriptions",
            json=push_subscription(endpoint),
            headers=world.rep_b.headers,
        )
        assert response.status_code == 201, response.text
        world.b_endpoint = endpoint
    return world.b_endpoint


@probe("POST", "/api/push/subscriptions")
async def probe_subscribe(client: Any, world: World) -> None:
    endpoint = await b_subscribed(client, world)
    own = f"https://fcm.googleapis.com/fcm/send/{secrets.token_urlsafe(16)}"
    response = await client.post(
        "/api/push/subscriptions", json=push_subscription(own), headers=world.rep_a.headers
    )
    assert response.status_code == 201, response.text
    assert await subscription_owner(own) == world.rep_a.user_id
    assert await subscription_owner(endpoint) == world.rep_b.user_id


@probe("DELETE", "/api/push/subscriptions")
async def probe_unsubscribe(client: Any, world: World) -> None:
    endpoint = await b_subscribed(client, world)
    for who in world.outsiders:
        response = await client.request(
            "DELETE", "/api/push/subscriptions", json={"endpoint": endpoint}, headers=who.headers
        )
        assert response.status_code in (204, 404), response.text
        assert await subscription_owner(endpoint) == world.rep_b.user_id


@probe("GET", "/api/nearby")
async def probe_nearby(client: Any, world: World) -> None:
    for who in world.outsiders:
        response = await client.get(
            f"/api/nearby?lat={LYON[0]}&lng={LYON[1]}&radius_m=5000&limit=500",
            headers=who.headers,
        )
        assert response.status_code == 200, response.text
        found = {r["account"]["id"] for r in response.json()["results"]}
        assert world.a["accounts"] in found
        assert world.b["accounts"] not in found


@probe("GET", "/api/reports/team")
@probe("GET", "/api/reports/team.csv")
@probe("GET", "/api/team/devices")
async def probe_team_reports(client: Any, world: World) -> None:
    """A rep gets 403; team A's manager gets team A's figures, and 403 for team B's."""
    paths = {
        "/api/reports/team": "/api/reports/team?from=2026-01-01&to=2026-01-31",
        "/api/reports/team.csv": "/api/reports/team.csv?from=2026-01-01&to=2026-01-31",
        "/api/team/devices": "/api/team/devices?",
    }
    for path in paths.values():
        response = await client.get(path, headers=world.rep_a.headers)
        assert response.status_code == 403, response.text
        b_team = f"&team_id={world.rep_b.team_id}"
        response = await client.get(path + b_team, headers=world.manager_a.headers)
        assert response.status_code == 403, response.text
        response = await client.get(path, headers=world.manager_a.headers)
        assert response.status_code == 200, response.text
        assert world.rep_b.user_id not in response.text
        assert world.rep_a.user_id in response.text or path.endswith("devices?")


CAMPAIGN_AREA = {"type": "rectangle", "points": [[LYON[0] - 0.1, LYON[1] - 0.1],
                                                 [LYON[0] + 0.1, LYON[1] + 0.1]]}  # fmt: skip


def campaign_body(**extra: Any) -> dict[str, Any]:
    from datetime import date, timedelta

    start = date.today() + timedelta(days=7 - date.today().weekday())
    end = start + timedelta(days=4)
    return {"name": "Tour", "from": start.isoformat(), "to": end.isoformat(),
            "area": CAMPAIGN_AREA, **extra}  # fmt: skip


@probe("POST", "/api/campaigns")
@probe("GET", "/api/campaigns")
@probe("GET", "/api/campaigns/{campaign_id:str}")
async def probe_campaigns(client: Any, world: World) -> None:
    """A rep gets 403; team A's manager plans for team A only (team B's accounts lie in the
    same area), lists team A's campaigns only and gets 404 for team B's."""
    tasks, seq = await count("tasks"), await current_seq()
    for query in ("", "?dry_run=true"):
        response = await client.post(
            f"/api/campaigns{query}", json=campaign_body(), headers=world.rep_a.headers
        )
        expect(response, 403)
        response = await client.post(
            f"/api/campaigns{query}",
            json=campaign_body(team_id=world.rep_b.team_id),
            headers=world.manager_a.headers,
        )
        expect(response, 403)
    assert (await count("tasks"), await current_seq()) == (tasks, seq)
    expect(await client.get("/api/campaigns", headers=world.rep_a.headers), 403)
    b_campaign = await client.post(
        "/api/campaigns", json=campaign_body(), headers=world.manager_b.headers
    )
    assert b_campaign.status_code == 201, b_campaign.text
    b_id = b_campaign.json()["campaign"]["id"]
    assert world.b["accounts"] in b_campaign.text and world.a["accounts"] not in b_campaign.text
    listed = await client.get("/api/campaigns", headers=world.manager_a.headers)
    assert listed.status_code == 200 and b_id not in listed.text
    expect(await client.get(f"/api/campaigns/{b_id}", headers=world.manager_a.headers), 404)
    expect(await client.get(f"/api/campaigns/{b_id}", headers=world.rep_a.headers), 403)
    a_campaign = await client.post(
        "/api/campaigns?dry_run=true", json=campaign_body(), headers=world.manager_a.headers
    )
    assert a_campaign.status_code == 200, a_campaign.text
    assert world.a["accounts"] in a_campaign.text and world.b["accounts"] not in a_campaign.text


@probe("GET", "/api/org/rules")
@probe("PATCH", "/api/org/rules")
async def probe_org_rules(client: Any, world: World) -> None:
    """Anyone reads the built-in rules' switches; only an admin changes them."""
    for who in (world.rep_a, world.manager_a):
        assert (await client.get("/api/org/rules", headers=who.headers)).status_code == 200
        response = await client.patch(
            "/api/org/rules", json={"follow_up_task": False}, headers=who.headers
        )
        expect(response, 403)
    rules = (await client.get("/api/org/rules", headers=world.rep_a.headers)).json()["rules"]
    assert rules["follow_up_task"] is True


# -- the tests ---------------------------------------------------------------------------

SERVED = served_api_routes()


def test_every_api_route_has_a_scoping_probe():
    missing = [route for route in SERVED if route not in PROBES]
    assert not missing, f"add a probe to tests/integration/test_scoping.py for {missing}"


async def test_team_a_can_neither_read_nor_write_team_b_through_any_route(client):
    world = await build_world(client)
    failures = []
    for route in SERVED:
        run = PROBES.get(route)
        if run is None:
            continue  # reported by test_every_api_route_has_a_scoping_probe
        try:
            await run(client, world)
        except AssertionError as exc:
            failures.append(f"{route[0]} {route[1]}: {exc}")
    assert not failures, "\n".join(failures)


async def test_a_task_without_an_account_is_seen_by_its_assignee_only(client):
    author = await login_as(client, "rep", "north")
    assignee = await login_as(client, "rep", "north")
    manager = await login_as(client, "manager", "north")
    stranger = await login_as(client, "rep", "south")
    admin = await login_as(client, "admin", "hq")
    task = await make_child(client, author, "tasks", account_id=None, assignee_id=assignee.user_id)
    path = f"/api/tasks/{task['id']}"
    assert (await client.get(path, headers=assignee.headers)).status_code == 200
    listed = (await client.get("/api/tasks", headers=assignee.headers)).json()
    assert task["id"] in listed_ids(listed)
    for who in (author, manager, stranger):
        expect(await client.get(path, headers=who.headers), 404)
        assert task["id"] not in listed_ids(
            (await client.get("/api/tasks", headers=who.headers)).json()
        )
    assert (await client.get(path, headers=admin.headers)).status_code == 200
    # The assignee may work on it.
    done = await client.patch(path, json={"done": True}, headers=assignee.headers)
    assert done.status_code == 200 and done.json()["done"] is True


async def test_an_admin_sees_and_writes_everything(client):
    world = await build_world(client)
    admin = world.admin
    for table in RECORD_TABLES:
        listed = (await client.get(f"/api/{table}?limit=200", headers=admin.headers)).json()
        assert {world.a[table], world.b[table]} <= listed_ids(listed), table
        for record_id in (world.a[table], world.b[table]):
            response = await client.get(f"/api/{table}/{record_id}", headers=admin.headers)
            assert response.status_code == 200, response.text
    loose = await client.get(f"/api/tasks/{world.b_loose_task}", headers=admin.headers)
    assert loose.status_code == 200
    response = await client.patch(
        f"/api/contacts/{world.b['contacts']}", json={"name": "By admin"}, headers=admin.headers
    )
    assert response.status_code == 200 and response.json()["name"] == "By admin"
    pulled = await sync(client, admin, [])
    assert world.b_ids() | set(world.a.values()) <= {c["id"] for c in pulled["changes"]}


async def test_an_admin_reassigns_an_account_to_another_team_a_manager_may_not(client):
    world = await build_world(client)
    manager, account_id = world.manager_a, world.a["accounts"]
    before = await snapshot("accounts", account_id)
    for body in ({"team_id": world.rep_b.team_id}, {"owner_id": world.rep_b.user_id}):
        response = await client.post(
            f"/api/accounts/{account_id}/reassign", json=body, headers=manager.headers
        )
        expect(response, 403)
    assert await snapshot("accounts", account_id) == before
    response = await client.post(
        f"/api/accounts/{account_id}/reassign",
        json={"team_id": world.rep_b.team_id},
        headers=world.admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["team_id"] == world.rep_b.team_id
    for who in (manager, world.rep_a):
        expect(await client.get(f"/api/accounts/{account_id}", headers=who.headers), 404)
        for table in CHILD_TABLES:
            listed = (await client.get(f"/api/{table}", headers=who.headers)).json()
            assert world.a[table] not in listed_ids(listed), table
    moved = await client.get(f"/api/accounts/{account_id}", headers=world.rep_b.headers)
    assert moved.status_code == 200, moved.text
    for table in CHILD_TABLES:
        assert [r["id"] for r in moved.json()[table]] == [world.a[table]], table
        read = await client.get(f"/api/{table}/{world.a[table]}", headers=world.rep_b.headers)
        assert read.status_code == 200, read.text
    # Team A's devices are told to drop it; team B's get it.
    a_pull = {c["id"]: c["op"] for c in (await sync(client, world.rep_a2, []))["changes"]}
    assert account_id not in a_pull
    b_pull = {c["id"]: c["op"] for c in (await sync(client, world.rep_b, []))["changes"]}
    assert b_pull[account_id] == "put"


async def test_reassigning_to_an_owner_moves_the_account_to_the_owners_team(client):
    world = await build_world(client)
    response = await client.post(
        f"/api/accounts/{world.a['accounts']}/reassign",
        json={"owner_id": world.rep_b.user_id},
        headers=world.admin.headers,
    )
    assert response.status_code == 200, response.text
    moved = response.json()
    assert (moved["owner_id"], moved["team_id"]) == (world.rep_b.user_id, world.rep_b.team_id)
    assert (
        await client.get(f"/api/accounts/{moved['id']}", headers=world.rep_b.headers)
    ).is_success
    expect(await client.get(f"/api/accounts/{moved['id']}", headers=world.rep_a.headers), 404)


async def test_a_rep_cannot_hand_an_account_to_another_team_by_patching(client):
    world = await build_world(client)
    account_id = world.a["accounts"]
    before = await snapshot("accounts", account_id)
    for body, status in (
        ({"owner_id": world.rep_b.user_id}, 403),
        ({"team_id": world.rep_b.team_id}, 422),
    ):
        response = await client.patch(
            f"/api/accounts/{account_id}", json=body, headers=world.rep_a.headers
        )
        expect(response, status)
    assert await snapshot("accounts", account_id) == before
    # Nor to a teammate: a manager reassigns (SPEC section 2, v1.1).
    response = await client.patch(
        f"/api/accounts/{account_id}",
        json={"owner_id": world.rep_a2.user_id},
        headers=world.rep_a.headers,
    )
    expect(response, 403)
    response = await client.post(
        f"/api/accounts/{account_id}/reassign",
        json={"owner_id": world.rep_a2.user_id},
        headers=world.manager_a.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["team_id"] == world.rep_a.team_id
