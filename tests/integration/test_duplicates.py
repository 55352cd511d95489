"""The duplicate finder (SPEC section 9) over HTTP on both engines."""

from __future__ import annotations

from typing import Any

from tests.factories import login_as, make_account, make_record


async def test_groups_of_likely_duplicates(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    a = await make_account(client, rep, name="Électricité Laurent", lat=45.7640, lng=4.8357)
    b = await make_account(client, rep, name="ELECTRICITE LAURENT", lat=45.7641, lng=4.8358)
    c = await make_account(client, rep, name="Laurent Elec", phone="04 78 00 00 01", country="FR")
    d = await make_account(client, rep, name="Garage", phone="+33478000001")
    await make_account(client, rep, name="Unrelated", lat=45.7640, lng=4.8357)
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
