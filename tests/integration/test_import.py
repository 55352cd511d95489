"""Import (SPEC section 8) over HTTP on both engines: the files spreadsheets write, column
aliases, per-row errors, duplicates, dry runs that answer what a real run does, progress
with geocoding, revert, and an export that re-imports unchanged."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl

from geo.geocoding import GeocodeResult
from server import db
from server.nearby.geocoding import run_round
from server.transfer.columns import ALIASES
from tests.factories import Login, login_as, make_account, make_record

LYON = (45.7640, 4.8357)


def csv_body(rows: list[list[Any]], sep: str = ",") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=sep, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


async def post_import(
    client: Any, who: Login, body: bytes | str, table: str = "accounts", **query: str
) -> Any:
    content = body.encode() if isinstance(body, str) else body
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return await client.post(
        f"/api/import/{table}" + (f"?{params}" if params else ""),
        content=content,
        headers={**who.headers, "Content-Type": "text/csv"},
    )


async def imported(client: Any, who: Login, body: bytes | str, **query: str) -> dict[str, Any]:
    response = await post_import(client, who, body, **query)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def import_status(client: Any, who: Login, import_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/import/{import_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


async def seq() -> int:
    return int((await db.fetch("SELECT value FROM sync_meta WHERE key = {}", "seq"))[0]["value"])


async def accounts() -> dict[str, dict[str, Any]]:
    rows = await db.fetch("SELECT * FROM accounts WHERE deleted = {}", False)
    return {row["name"]: row for row in rows}


FRENCH = [
    ["Raison sociale", "Adresse", "Code postal", "Ville", "Pays", "Téléphone", "Latitude",
     "Longitude", "Commercial", "Remarque"],
    ["Électricité Laurent", "3 rue Neuve", "69001", "Lyon", "France", "04 78 00 00 01",
     "45,7640", "4,8357", "", "bon client"],
    ["Boulangerie Martin", "5 place Bellecour", "69002", "Lyon", "France", "04 78 00 00 02",
     "", "", "", ""],
]  # fmt: skip


async def test_a_french_excel_file_in_windows_1252_with_semicolons(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    rep = await login_as(client, "rep", "north")
    rows = [row[:] for row in FRENCH]
    rows[2][8] = rep.username
    body = csv_body(rows, ";").encode("cp1252")
    answer = await imported(client, manager, body)
    assert answer["rows"] == 2 and answer["created"] == 2, answer
    assert answer["errors"] == [] and answer["unknown_columns"] == ["Remarque"]
    assert answer["encoding"] in ("cp1252", "windows-1252", "cp1250", "latin_1", "iso8859_15")
    found = await accounts()
    laurent = found["Électricité Laurent"]
    assert (laurent["lat"], laurent["lng"]) == LYON
    assert laurent["postal_code"] == "69001" and laurent["phone_e164"] == "+33478000001"
    assert str(laurent["owner_id"]) == manager.user_id
    assert str(found["Boulangerie Martin"]["owner_id"]) == rep.user_id
    assert str(laurent["team_id"]) == manager.team_id


async def test_utf8_with_a_bom_and_xlsx(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    body = "\ufeff" + csv_body([["Company", "Zip", "City"], ["Café Zoé", "69003", "Lyon"]])
    answer = await imported(client, manager, body.encode("utf-8"))
    assert answer["created"] == 1 and answer["encoding"] == "utf-8"
    assert (await accounts())["Café Zoé"]["postal_code"] == "69003"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Organisation", "Postcode", "latitude", "longitude"])
    sheet.append(["Garage Dupont", 69004, 45.77, 4.83])
    sheet.append([None, None, None, None])
    sheet.append(["Fleurs & Co", "69005", None, None])
    out = io.BytesIO()
    workbook.save(out)
    answer = await imported(client, manager, out.getvalue())
    assert answer["created"] == 2 and answer["encoding"] == "xlsx", answer
    garage = (await accounts())["Garage Dupont"]
    assert garage["postal_code"] == "69004" and garage["lat"] == 45.77


async def test_bad_files_are_refused_whole(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    before = await seq()
    cases = [
        (b"", 422, "empty"),
        (b"\r\n\r\n", 422, "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff\xfe", 415, "unsupported_media_type"),
        (b"PK\x03\x04 this is no workbook", 415, "unsupported_media_type"),
        ("Électricité Laurent,Lyon\nBoulangerie,Lyon\n".encode(), 422, "no_header"),
        ("name,city\nÉlectricité,Lyon\n".encode() + "Café,Lyon\n".encode("cp1252"), 422,
         "mixed_encoding"),
        (b'name,city\n"' + b"x" * 20_000 + b",Lyon\n", 422, "too_long"),
    ]  # fmt: skip
    for body, status, error in cases:
        response = await post_import(client, manager, body)
        assert response.status_code == status, (body[:40], response.text)
        assert response.json()["error"] == error, response.text
    many = "name\n" + "".join(f"Shop {n}\n" for n in range(50_001))
    response = await post_import(client, manager, many)
    assert response.status_code == 413 and response.json()["error"] == "too_many_rows"
    huge = b"name\n" + b"x" * (20 * 1024 * 1024 + 10)
    response = await post_import(client, manager, huge)
    assert response.status_code == 413, response.text
    assert await seq() == before
    assert not await db.fetch("SELECT id FROM imports")


async def test_each_row_is_checked_alone(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    outsider = await login_as(client, "rep", "south")
    rows = [
        ["name", "lat", "lng", "status", "owner", "email"],
        ["Good one", "45.1", "4.1", "client", "", "a@b.fr"],
        ["Far north", "95", "4.1", "", "", ""],
        ["", "45.2", "4.2", "", "", ""],
        ["Bad status", "", "", "closed", "", ""],
        ["Nobody's", "", "", "", "ghost", ""],
        ["Not mine", "", "", "", outsider.username, ""],
        ["Good two", "", "", "", "", ""],
    ]
    answer = await imported(client, manager, csv_body(rows))
    assert answer["created"] == 2 and answer["rows"] == 7, answer
    errors = {(e["row"], e["column"], e["error"]) for e in answer["errors"]}
    assert errors == {
        (3, "lat", "out_of_range"),
        (4, "name", "required"),
        (5, "status", "invalid"),
        (6, "owner", "not_found"),
        (7, "owner", "forbidden"),
    }, answer["errors"]
    assert all(e["detail"] for e in answer["errors"])
    assert set(await accounts()) == {"Good one", "Good two"}
    assert (await accounts())["Good one"]["status"] == "customer"


async def test_reps_may_not_import(client: Any) -> None:
    rep = await login_as(client, "rep", "north")
    response = await post_import(client, rep, "name\nShop\n")
    assert response.status_code == 403
    assert not await accounts()


async def test_a_dry_run_answers_what_the_real_run_does_and_changes_nothing(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    outsider = await login_as(client, "rep", "south")
    await make_account(client, manager, name="Électricité Laurent", lat=LYON[0], lng=LYON[1])
    await make_account(client, manager, name="Old Garage", phone="+33478000009")
    rows = [
        ["name", "lat", "lng", "phone", "owner", "website", "city"],
        ["ELECTRICITE LAURENT SARL", "45.7641", "4.8358", "", "", "", ""],  # a duplicate
        ["Garage du Coin", "", "", "+33 4 78 00 00 09", "", "", "Lyon"],  # same phone
        ["Fleurs Zoé", "45.70", "4.80", "", "", "http://fleurs-zoe.fr", ""],
        ["Fleurs Zoe", "", "", "0478000011", "", "https://www.fleurs-zoe.fr/", ""],  # in file
        ["Not mine", "", "", "", outsider.username, "", ""],
        ["Bad", "99", "", "", "", "", ""],
    ]
    body = csv_body(rows)
    before, names = await seq(), set(await accounts())
    dry = await imported(client, manager, body, dry_run="true", on_duplicate="update")
    assert await seq() == before and set(await accounts()) == names
    assert not await db.fetch("SELECT id FROM imports")
    real = await imported(client, manager, body, on_duplicate="update")
    assert dry["import_id"] is None and real["import_id"]
    assert {**dry, "import_id": None, "dry_run": False} == {**real, "import_id": None}
    assert (real["created"], real["updated"], real["duplicates"]) == (1, 1, 2), real
    found = await accounts()
    assert found["Old Garage"]["city"] == "Lyon"  # filled: it had none
    assert found["Fleurs Zoé"]["phone"] == "0478000011"  # the file's second row filled it
    assert "Fleurs Zoe" not in found and "ELECTRICITE LAURENT SARL" not in found


async def test_skip_leaves_existing_records_alone(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    old = await make_account(client, manager, name="Old Garage", email="contact@garage.fr")
    answer = await imported(client, manager, "name,email,city\nGarage!,Contact@Garage.fr,Lyon\n")
    assert (answer["created"], answer["updated"], answer["duplicates"]) == (0, 0, 1)
    row = (await db.fetch("SELECT city, seq FROM accounts WHERE id = {}", old["id"]))[0]
    assert row["city"] is None


async def test_progress_and_geocoding_of_imported_accounts(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    body = csv_body(
        [["name", "street", "city", "country"], ["A", "1 rue Neuve", "Lyon", "FR"],
         ["B", "", "Nowhere", ""], ["C", "", "", ""]]
    )  # fmt: skip
    answer = await imported(client, manager, body)
    status = (
        await client.get(f"/api/import/{answer['import_id']}", headers=manager.headers)
    ).json()
    assert status["state"] == "done" and status["created"] == 3
    assert status["written"] == status["rows"] == 3
    assert status["geocoding"] == {"pending": 2, "placed": 0, "not_found": 0}

    class Lyon:
        def geocode_address(self, **address: Any) -> GeocodeResult | None:
            if address.get("city") == "Lyon":
                return GeocodeResult(LYON[0], LYON[1], "street", "test")
            return None

    report = await run_round(Lyon())  # the geocoding job's own round
    assert report.placed == 1 and report.not_found == 1
    status = (
        await client.get(f"/api/import/{answer['import_id']}", headers=manager.headers)
    ).json()
    assert status["geocoding"] == {"pending": 0, "placed": 1, "not_found": 1}


async def test_revert_keeps_what_was_changed_since(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    rep = await login_as(client, "rep", "north")
    old = await make_account(client, manager, name="Old Garage", phone="+33478000009")
    await make_account(client, manager, name="Other", phone="+33478000010")
    rows = [
        ["name", "phone", "city", "email", "street"],
        ["Plain", "", "", "", "1 rue"],
        ["Edited", "", "", "", ""],
        ["Visited", "", "", "", ""],
        ["Old Garage", "+33478000009", "Lyon", "old@garage.fr", ""],
        ["Other", "+33478000010", "Lyon", "", ""],
    ]
    answer = await imported(client, manager, csv_body(rows), on_duplicate="update")
    assert (answer["created"], answer["updated"]) == (3, 2)
    found = await accounts()
    await client.patch(
        f"/api/accounts/{found['Edited']['id']}", json={"city": "Lyon"}, headers=rep.headers
    )
    await make_record(
        client, rep, "visits", account_id=str(found["Visited"]["id"]),
        started_at="2026-05-01T09:30:00+02:00",
    )  # fmt: skip
    await client.patch(
        f"/api/accounts/{old['id']}", json={"city": "Villeurbanne"}, headers=rep.headers
    )
    # The geocoder placing an imported account is not a change by a person.
    await run_round(type("Anywhere", (), {"geocode_address": lambda self, **a: GeocodeResult(
        45.0, 4.0, "street", "test")})())  # fmt: skip
    other_team = await login_as(client, "manager", "south")
    response = await client.delete(f"/api/import/{answer['import_id']}", headers=other_team.headers)
    assert response.status_code == 404
    response = await client.delete(f"/api/import/{answer['import_id']}", headers=manager.headers)
    assert response.status_code == 200, response.text
    reverted = response.json()
    assert reverted["deleted"] == 1 and reverted["emptied"] == 2
    kept = {k["name"]: k["reason"] for k in reverted["kept"]}
    assert kept == {
        "Edited": "changed since: city",
        "Visited": "has records",
        "Old Garage": "changed since: city",
    }
    found = await accounts()
    assert "Plain" not in found and {"Edited", "Visited"} <= set(found)
    assert found["Old Garage"]["city"] == "Villeurbanne" and found["Old Garage"]["email"] is None
    assert found["Other"]["city"] is None
    again = await client.delete(f"/api/import/{answer['import_id']}", headers=manager.headers)
    assert again.status_code == 409
    status = (
        await client.get(f"/api/import/{answer['import_id']}", headers=manager.headers)
    ).json()
    assert status["state"] == "reverted" and status["reverted"]["deleted"] == 1


async def test_contacts_by_account_name_or_id(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    laurent = await make_account(client, manager, name="Électricité Laurent", country="FR")
    await make_account(client, manager, name="Twin")
    await make_account(client, manager, name="Twin")
    await make_record(
        client, manager, "contacts", account_id=laurent["id"], name="Zoé", email="zoe@x.fr"
    )
    rows = [
        ["Full name", "Company", "Job title", "Mobile", "E-mail"],
        ["Jean Laurent", "electricite laurent", "Boss", "06 12 34 56 78", ""],
        ["Zoé M.", laurent["id"], "", "", "ZOE@x.fr"],  # the same email: a duplicate
        ["Ann", "Twin", "", "", ""],
        ["Bob", "Nobody Inc", "", "", ""],
    ]
    answer = (await post_import(client, manager, csv_body(rows), "contacts")).json()
    assert (answer["created"], answer["duplicates"]) == (1, 1), answer
    assert {(e["row"], e["column"], e["error"]) for e in answer["errors"]} == {
        (4, "Company", "ambiguous"),
        (5, "Company", "not_found"),
    }
    jean = (await db.fetch("SELECT * FROM contacts WHERE name = {}", "Jean Laurent"))[0]
    assert str(jean["account_id"]) == laurent["id"] and jean["title"] == "Boss"


async def test_an_export_reimports_unchanged(client: Any) -> None:
    manager = await login_as(client, "manager", "north")
    shop = await make_account(
        client, manager, name='=HYPERLINK("x")', phone="+33 4 78 00 00 01", city="Lyon",
        lat=-12.5, lng=4.0, street="-1, rue \"Neuve\"\nbât. B", status="customer",
    )  # fmt: skip
    await make_account(client, manager, name="Électricité Laurent", website="laurent.fr")
    await make_record(client, manager, "contacts", account_id=shop["id"], name="Zoé", phone="+1")
    before = await seq()
    for table in ("accounts", "contacts"):
        exported = await client.get(f"/api/export/{table}.csv", headers=manager.headers)
        answer = (
            await post_import(client, manager, exported.content, table, on_duplicate="update")
        ).json()
        assert answer["errors"] == [] and answer["unknown_columns"] == [], answer
        assert (answer["created"], answer["updated"]) == (0, 0), answer
        assert answer["duplicates"] == answer["rows"]
    assert await seq() == before
    # Into an empty database (another organisation), the same rows come back whole.
    exported = await client.get("/api/export/accounts.csv", headers=manager.headers)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows[0]["name"].startswith("'=") or rows[1]["name"].startswith("'=")
    await db.fetch("DELETE FROM accounts")
    answer = (await post_import(client, manager, exported.content)).json()
    assert answer["created"] == 2, answer
    again = await db.fetch("SELECT * FROM accounts WHERE id = {}", shop["id"])
    assert again[0]["name"] == '=HYPERLINK("x")' and again[0]["lat"] == -12.5
    assert again[0]["street"] == '-1, rue "Neuve"\nbât. B'


def _as_written(alias: str) -> str:
    """An alias as a spreadsheet's header would write it: words capitalised, spaced."""
    return alias.replace("_", " ").title()


async def test_every_alias_fills_its_field(client: Any) -> None:
    """Each alias of columns.ALIASES (written "Code Postal", "E Mail", ...) fills its field:
    one file per round, each column named by the round's alias of its field."""
    spec = {
        "name": {"company", "organisation"},
        "postal_code": {"zip", "postcode"},
        "lat": {"latitude"},
        "lng": {"longitude"},
        "owner": {"owner"},
    }  # SPEC section 8
    assert all(spec[f] <= set(ALIASES["accounts"][f]) for f in spec)
    assert "account" in ALIASES["contacts"]["account"]
    manager = await login_as(client, "manager", "north")
    rep = await login_as(client, "rep", "north")
    names = {k: v for k, v in ALIASES["accounts"].items() if k not in ("id", "owner_id")}
    for n in range(max(len(aliases) for aliases in names.values())):
        # Each its own phone, email and website, far from the others: no duplicates.
        values = {"status": "customer", "phone": f"04 78 00 00 {n:02d}",
                  "email": f"a@shop{n}.fr", "website": f"shop{n}.fr", "street": "3 rue Neuve",
                  "city": "Lyon", "region": "ARA", "postal_code": "69001", "country": "FR",
                  "lat": f"{40 + n}.5", "lng": "4.5", "owner": rep.username}  # fmt: skip
        fields = list(names)
        header = [_as_written(names[f][n % len(names[f])]) for f in fields]
        row = [f"Shop {n}" if f == "name" else values[f] for f in fields]
        answer = await imported(client, manager, csv_body([header, row]))
        assert (answer["created"], answer["unknown_columns"], answer["errors"]) == (1, [], [])
        found = (await accounts())[f"Shop {n}"]
        got = {f: found["owner_id" if f == "owner" else f] for f in values}
        assert got == {**values, "lat": 40 + n + 0.5, "lng": 4.5, "owner": rep.user_id}, header
    account = await make_account(client, manager, name="Garage Dupont")
    names = {k: v for k, v in ALIASES["contacts"].items() if k not in ("id", "account_id")}
    values = {"account": "Garage Dupont", "title": "Boss", "phone": "06 12 34 56 78",
              "email": "c@garage.fr"}  # fmt: skip
    for n in range(max(len(aliases) for aliases in names.values())):
        fields = list(names)
        header = [_as_written(names[f][n % len(names[f])]) for f in fields]
        row = [f"Contact {n}" if f == "name" else values[f] for f in fields]
        body = csv_body([header, row])
        answer = (await post_import(client, manager, body, "contacts")).json()
        assert (answer["created"], answer["unknown_columns"], answer["errors"]) == (1, [], [])
        found = (await db.fetch("SELECT * FROM contacts WHERE name = {}", f"Contact {n}"))[0]
        got = {f: found["account_id" if f == "account" else f] for f in values}
        assert got == {**values, "account": account["id"]}, header
        await db.fetch("DELETE FROM contacts WHERE name = {}", f"Contact {n}")  # not a duplicate
