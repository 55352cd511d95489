"""The duplicate finder (SPEC section 9) over HTTP on both engines."""

from __future__ import annotations

import time
from typing import Any

import pytest

from server import db
from server.auth.services import actor_for_user
from server.transfer import services
from tests.factories import login_as, make_account, make_record, new_id


async def test_groups_of_likely_duplicates(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "FINDER_PAGE", 2)  # the rows are read in pages
    monkeypatch.setattr(services, "CONTACTS_PER_READ", 1)
    rep = await login_as(client, "rep", "north")
    a = await make_account(client, rep, name="Électricité Laurent", lat=45.7640, lng=4.8357)
    b = await make_account(client, rep, name="ELECTRICITE LAURENT", lat=45.7641, lng=4.8358)
    c = await make_account(client, rep, name="Laurent Elec", phone="04 78 00 00 01", country="FR")
    d = await make_account(client, rep, name="Garage", phone="+33478000001")
    await make_account(client, rep, name="Unrelated", lat=45.7640, lng=4.8357)
    await make_account(client, rep, name="Unrelated")  # the same name across two pages
    # Page by page (two rows each, the two "Unrelated" across a page's end), every one.
    actor = await actor_for_user(rep.user_id)
    assert actor is not None
    read = [row["id"] for row in await services._accounts_seen(actor, "id, name")]
    assert sorted(read) == sorted(row["id"] for row in await db.fetch("SELECT id FROM accounts"))
    response = await client.get("/api/duplicates/accounts", headers=rep.headers)
    assert response.status_code == 200, response.text
    groups = response.json()["groups"]
    by_ids = {tuple(g["ids"]): g for g in groups}
    assert set(by_ids) == {tuple(sorted([a["id"], b["id"]])), tuple(sorted([c["id"], d["id"]]))}
    assert by_ids[tuple(sorted([c["id"], d["id"]]))]["reasons"] == ["phone"]
    first = by_ids[tuple(sorted([a["id"], b["id"]]))]
    assert first["reasons"][0] == "name" and first["reasons"][1].startswith("distance_m=")
    limited = await client.get("/api/duplicates/accounts?limit=1", headers=rep.headers)
    assert len(limited.json()["groups"]) == 1
    await make_record(client, rep, "contacts", account_id=a["id"], name="Zoé", email="z@x.fr")
    await make_record(client, rep, "contacts", account_id=c["id"], name="Z. M.", email="Z@x.fr")
    contacts = await client.get("/api/duplicates/contacts", headers=rep.headers)
    assert [g["reasons"] for g in contacts.json()["groups"]] == [["email"]]
    assert (await client.get("/api/duplicates/visits", headers=rep.headers)).status_code == 404


async def test_a_likely_duplicate_synced_from_a_phone_is_applied_and_listed(client: Any) -> None:
    """Section 9: the server answers a phone's likely duplicate with `applied` (nothing a rep
    captured is refused for being similar) and lists it in the duplicates from then on."""
    manager = await login_as(client, "manager", "north")
    alice = await login_as(client, "rep", "north")
    bob = await login_as(client, "rep", "north")
    shop = await make_account(
        client, manager, name="Électricité Laurent", lat=45.7640, lng=4.8357,
        phone="04 78 00 00 01", country="FR",
    )  # fmt: skip
    # Two phones that were offline captured the same shop, each its own way.
    captured = [
        (alice, {"name": "ELECTRICITE LAURENT SARL", "lat": 45.7641, "lng": 4.8358,
                 "status": "prospect"}),
        (bob, {"name": "Laurent (électricien)", "phone": "+33 4 78 00 00 01", "country": "FR",
               "status": "prospect"}),
    ]  # fmt: skip
    ids = []
    for who, fields in captured:
        record_id = new_id()
        hlc = [int(time.time() * 1000), 0]
        write = {"mid": 1, "table": "accounts", "id": record_id, "op": "upsert",
                 "fields": fields, "base_seq": None, "hlc": hlc}  # fmt: skip
        body = {"protocol": 1, "client_id": new_id(), "mutations": [write]}
        response = await client.post("/api/sync/v1", json=body, headers=who.headers)
        assert response.status_code == 200, response.text
        assert response.json()["ack"]["results"][0]["status"] == "applied", response.text
        ids.append(record_id)
    for who in (manager, alice, bob):
        response = await client.get("/api/duplicates/accounts", headers=who.headers)
        groups = response.json()["groups"]
        assert [g["ids"] for g in groups] == [sorted([shop["id"], *ids])], groups
        assert {"name", "phone"} <= set(groups[0]["reasons"]), groups
    outsider = await login_as(client, "manager", "south")
    response = await client.get("/api/duplicates/accounts", headers=outsider.headers)
    assert response.json()["groups"] == []
