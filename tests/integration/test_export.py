"""Export (SPEC section 8) on both engines: CSV of every table the caller sees, formula
cells neutralised, large tables streamed, and contacts as vCard 4.0."""

from __future__ import annotations

import csv
import io
from typing import Any

from server.transfer.export import EXPORTED, columns, escape_text, fold
from tests.factories import child_fields, login_as, make_account, make_record


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_every_table_exports_what_the_caller_sees(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    other = await login_as(client, "rep", "south")
    mine = await make_account(
        client, rep, name='Électricité Laurent, "chez Jo"', city="Lyon", lat=45.76, lng=4.83
    )
    theirs = await make_account(client, other, name="Boulangerie Sud")
    children = {}
    for table in EXPORTED[1:]:
        children[table] = await make_record(client, rep, table, **child_fields(table, mine["id"]))
    await make_record(client, other, "contacts", **child_fields("contacts", theirs["id"]))
    # As it is now: its visit gave it a last visit.
    mine = (await client.get(f"/api/accounts/{mine['id']}", headers=rep.headers)).json()["account"]
    assert mine["last_visit_at"] is not None
    for table in EXPORTED:
        response = await client.get(f"/api/export/{table}.csv", headers=rep.headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert response.content.decode("utf-8").splitlines()[0] == ",".join(columns(table))
        rows = read_csv(response.text)
        expected = mine if table == "accounts" else children[table]
        assert [row["id"] for row in rows] == [expected["id"]], table
        for name in columns(table):
            value = expected.get(name)
            if value is None:
                assert rows[0][name] == "", (table, name)
            elif isinstance(value, bool):
                assert rows[0][name] == str(value).lower()
            elif isinstance(value, float):
                assert float(rows[0][name]) == value
            elif name.endswith("_at"):
                assert rows[0][name][:19] == value[:19]
            else:
                assert rows[0][name] == str(value), (table, name)
    assert (
        read_csv((await client.get("/api/export/accounts.csv", headers=rep.headers)).text)[0][
            "name"
        ]
        == 'Électricité Laurent, "chez Jo"'
    )


async def test_formula_cells_are_neutralised(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    await make_account(
        client, rep, name='=HYPERLINK("http://evil.example","click")', phone="+33 4 78 00 00 00",
        city="@home", street="-1 rue", lat=-12.5, lng=4.0,
    )  # fmt: skip
    rows = read_csv((await client.get("/api/export/accounts.csv", headers=rep.headers)).text)
    row = rows[0]
    assert row["name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["phone"] == "'+33 4 78 00 00 00"
    assert row["city"] == "'@home" and row["street"] == "'-1 rue"
    assert row["lat"] == "-12.5"  # a number is written as a number


async def test_an_export_pages_through_a_large_table(client: Any) -> None:
    from server.core.actor import SYSTEM
    from server.core.writer import Edit, Source, writing
    from tests.factories import new_id

    rep = await login_as(client, "rep", "north")
    ids = [new_id() for _ in range(2_345)]
    owned = {"team_id": rep.team_id, "owner_id": rep.user_id}
    async with writing(Source.DEMO) as writer:
        edits = [Edit("accounts", i, {"name": f"Shop {n}", **owned}) for n, i in enumerate(ids)]
        await writer.apply_all(SYSTEM, edits)
    response = await client.get("/api/export/accounts.csv", headers=rep.headers)
    rows = read_csv(response.text)
    assert sorted(row["id"] for row in rows) == sorted(ids)


async def test_unknown_exports_answer_404(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    for name in ("users.csv", "accounts.json", "accounts", "conflicts.csv", "visits.vcf"):
        response = await client.get(f"/api/export/{name}", headers=rep.headers)
        assert response.status_code == 404, name
        assert response.json()["error"] == "not_found"
    assert (await client.get("/api/export/accounts.csv")).status_code == 401


async def test_contacts_export_as_vcard_4(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    shop = await make_account(client, rep, name="Laurent; Fils, SARL")
    long_title = "Responsable des achats et de l’approvisionnement électrique " * 3
    contact = await make_record(
        client, rep, "contacts", account_id=shop["id"], name="Zoé Martin", title=long_title,
        phone="+33 6 12 34 56 78", email="zoe@laurent.example",
    )  # fmt: skip
    response = await client.get("/api/export/contacts.vcf", headers=rep.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/vcard")
    raw = response.content
    physical = raw.split(b"\r\n")
    assert all(len(line) <= 75 for line in physical)
    assert b"\n" not in raw.replace(b"\r\n", b"")
    unfolded = raw.decode().replace("\r\n ", "").split("\r\n")
    assert unfolded[:3] == ["BEGIN:VCARD", "VERSION:4.0", f"UID:urn:uuid:{contact['id']}"]
    assert "FN:Zoé Martin" in unfolded
    assert "ORG:Laurent\\; Fils\\, SARL" in unfolded
    assert f"TITLE:{escape_text(long_title)}" in unfolded
    assert "TEL;VALUE=text:+33 6 12 34 56 78" in unfolded
    assert "EMAIL:zoe@laurent.example" in unfolded
    assert unfolded[-2] == "END:VCARD"


def test_folding_never_splits_a_character() -> None:
    line = "NOTE:" + "é" * 100
    folded = fold(line)
    for part in folded.split(b"\r\n")[:-1]:
        assert len(part) <= 75
        part.decode()  # each physical line is whole UTF-8
    assert folded.decode().replace("\r\n ", "") == line + "\r\n"
    assert escape_text("a\\b,c;d\ne") == "a\\\\b\\,c\\;d\\ne"
