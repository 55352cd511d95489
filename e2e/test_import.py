"""A manager imports and exports from the phone (SPEC section 8; docs/pwa.md): a French
Excel file (`;`, Windows-1252, decimal commas) checked as a dry run with its preview,
counts and row errors, then imported with its progress, the geocoding of accounts without
a position, and reverted; an .xlsx of contacts; the exports downloaded with the bearer
token; and the screen's place when the phone is offline or the user is a rep. At 360 px,
light and dark, and with large text."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import openpyxl
from playwright.async_api import expect

from e2e.conftest import Server
from e2e.import_pages import ImportScreen
from e2e.pages import PHONE, App, Phones, Rest

LYON = (45.7640, 4.8357)
CSV_MIME = "text/csv"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FRENCH_EXCEL = [
    ["Raison sociale", "Adresse", "Code postal", "Ville", "Pays", "Téléphone", "Latitude",
     "Longitude", "Commercial", "Remarque"],
    ["Électricité Laurent SARL", "3 rue Neuve", "69001", "Lyon", "France", "04 78 00 00 01",
     "45,7641", "4,8358", "", "bon client"],  # already here: a duplicate
    ["Boulangerie Martin", "5 place Bellecour", "69002", "Lyon", "France", "04 78 00 00 02",
     "", "", "alice", ""],  # no position: placed by the geocoder
    ["Bœuf & Cie", "12 rue Mercière", "69002", "Lyon", "France", "", "45,7600", "4,8300", "",
     "à voir"],
    ["Café de la Gare", "", "69003", "Lyon", "France", "", "45,7500", "4,8600", "", "terrasse"],
    ["Œuvre & Fils", "", "", "Villeurbanne", "France", "", "95", "4,88", "", ""],  # latitude
    ["Pâtisserie Zoé", "", "", "Lyon", "France", "", "", "", "personne", ""],  # no such user
]  # fmt: skip


def french_excel() -> bytes:
    """As Excel for Windows in French saves "CSV (séparateur: point-virgule)"."""
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(FRENCH_EXCEL)
    return out.getvalue().encode("cp1252")


async def manager_on_import(phones: Phones, server: Server) -> tuple[App, ImportScreen]:
    server.add_user("maud", role="manager", team="north")
    server.add_user("alice", team="north")
    app = await phones.signed_in(server.url, "maud")
    screen = ImportScreen(app)
    await screen.open()
    return app, screen


async def shoot(app: App, artifacts: Path, name: str) -> None:
    """Light and dark at 360 px, no sideways scrolling, text readable."""
    assert await app.scroll_width() <= PHONE["width"], name
    for scheme in ("light", "dark"):
        await app.page.emulate_media(color_scheme=scheme)
        await app.page.screenshot(path=artifacts / f"screen-{name}-{scheme}.png", full_page=True)
        low = await app.low_contrast()
        assert not low, f"{name} ({scheme}): text below WCAG AA contrast: {low}"
    await app.page.emulate_media(color_scheme="light")


async def test_a_french_excel_file_checked_imported_and_reverted(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    app, screen = await manager_on_import(phones, server)
    maud = await Rest.login(server.url, "maud")
    try:
        shop = await maud.create("accounts", name="Électricité Laurent", lat=LYON[0], lng=LYON[1])
        await screen.check("clients.csv", french_excel(), CSV_MIME)
        assert await screen.counts("import-preview-counts") == {
            "rows": 6, "created": 3, "updated": 0, "duplicates": 1, "errors": 2,
        }  # fmt: skip
        await expect(screen.tid("import-encoding")).to_contain_text("Windows-1252")
        await expect(screen.tid("import-unknown")).to_contain_text("Remarque")
        rows = screen.tid("import-preview-row")  # the first rows as read, duplicate included
        await expect(rows).to_have_count(4)
        await expect(rows.nth(0)).to_contain_text("Électricité Laurent SARL")
        await expect(rows.nth(1)).to_contain_text("Owner: alice")
        await expect(rows.nth(2)).to_contain_text("Bœuf & Cie")
        await expect(rows.nth(2)).to_contain_text("Latitude: 45.76")
        errors = await screen.errors()
        assert [(e["row"], e["column"], e["error"]) for e in errors] == [
            (6, "Latitude", "out_of_range"),
            (7, "Commercial", "not_found"),
        ], errors
        assert "personne" in errors[1]["text"]
        assert not [a for a in await maud.list("accounts") if a["name"] != shop["name"]]
        await shoot(app, artifacts, "import-preview")
        await app.page.evaluate("() => { document.documentElement.style.fontSize = '200%'; }")
        await shoot(app, artifacts, "import-preview-200")
        await app.page.evaluate("() => { document.documentElement.style.fontSize = ''; }")

        await expect(screen.tid("import-progress-text")).to_contain_text("All 6 rows checked")
        await screen.confirm()
        assert await screen.counts("import-done-counts") == {
            "rows": 6, "created": 3, "updated": 0, "duplicates": 1, "errors": 2,
        }  # fmt: skip
        assert "id=" in app.page.url  # the import's progress can be opened again
        names = {a["name"]: a for a in await maud.list("accounts")}
        assert set(names) == {"Électricité Laurent", "Boulangerie Martin", "Bœuf & Cie",
                              "Café de la Gare"}  # fmt: skip
        assert names["Bœuf & Cie"]["lat"] == 45.76 and names["Café de la Gare"]["lng"] == 4.86
        # The geocoding job places the account that came without a position.
        await expect(screen.tid("import-geocoding")).to_have_attribute(
            "data-pending", "0", timeout=30_000
        )
        placed = {a["name"]: a for a in await maud.list("accounts")}["Boulangerie Martin"]
        assert placed["lat"] is not None and placed["geo_precision"] != "none", placed
        await app.synced()
        on_phone = {row["name"] for row in await app.rows("accounts")}
        assert {"Boulangerie Martin", "Bœuf & Cie", "Café de la Gare"} <= on_phone
        await shoot(app, artifacts, "import-done")

        # Its progress opens again later, from the address.
        await app.reload()
        await expect(screen.tid("import-summary")).to_have_attribute("data-state", "done")
        await screen.revert()
        await expect(screen.tid("import-reverted")).to_have_attribute("data-deleted", "3")
        await expect(screen.tid("import-reverted")).not_to_contain_text("null")
        assert [a["name"] for a in await maud.list("accounts")] == ["Électricité Laurent"]
        await shoot(app, artifacts, "import-reverted")
    finally:
        await maud.close()


async def test_an_xlsx_of_contacts_and_the_exports(
    server: Server, phones: Phones, artifacts: Path
) -> None:
    app, screen = await manager_on_import(phones, server)
    maud = await Rest.login(server.url, "maud")
    try:
        shop = await maud.create("accounts", name="Électricité Laurent", city="Lyon")
        await app.synced()  # the preview names accounts the phone holds
        workbook = openpyxl.Workbook()
        sheet: Any = workbook.active
        sheet.append(["Nom complet", "Société", "Fonction", "E-mail"])
        sheet.append(["Zoé Martin", "Electricite Laurent", "Gérante", "zoe@laurent.fr"])
        sheet.append(["Jean Dupont", "Nobody Inc", "", ""])
        out = io.BytesIO()
        workbook.save(out)
        await screen.check("contacts.xlsx", out.getvalue(), XLSX_MIME, table="contacts")
        await expect(screen.tid("import-encoding")).to_contain_text("Excel workbook")
        assert (await screen.counts("import-preview-counts"))["created"] == 1
        await expect(screen.tid("import-preview-row")).to_contain_text("Account: Électricité")
        await screen.confirm()
        [zoe] = await maud.list("contacts")
        assert (zoe["name"], zoe["account_id"], zoe["title"]) == (
            "Zoé Martin",
            shop["id"],
            "Gérante",
        )

        name, content = await screen.export("export-accounts")
        assert name == "accounts.csv"
        exported = list(csv.DictReader(io.StringIO(content.decode("utf-8"))))
        assert [row["name"] for row in exported] == ["Électricité Laurent"]
        name, content = await screen.export("export-vcard")
        assert name == "contacts.vcf"
        assert b"BEGIN:VCARD" in content and "Zoé Martin".encode() in content
        await expect(screen.tid("export-message")).to_contain_text("contacts.vcf downloaded")
        await shoot(app, artifacts, "import-export")
    finally:
        await maud.close()


async def test_offline_or_as_a_rep(server: Server, phones: Phones) -> None:
    server.add_user("maud", role="manager", team="north")
    server.add_user("alice", team="north")
    app = await phones.signed_in(server.url, "maud")
    # The screen is fetched when opened, not kept for offline use: offline it says so.
    await app.set_offline(True)
    await app.go("#/import")
    await expect(app.tid("screen-needs-connection")).to_be_visible()
    await app.set_offline(False)
    await app.go("#/today")
    await app.go("#/import")
    await expect(app.tid("import-form")).to_be_visible()
    # Loaded once, it still opens offline in this page, and says what it needs. (Each screen
    # drawn before the next step: the file must go to the new form, not the one leaving.)
    await app.set_offline(True)
    await app.go("#/today")
    await app.expect_screen("today")
    await app.go("#/import")
    await app.expect_screen("import")
    await app.tid("import-file").set_input_files(
        files=[{"name": "a.csv", "mimeType": CSV_MIME, "buffer": b"name\nShop\n"}]
    )
    await app.tid("import-check").click()
    await expect(app.tid("import-message")).to_contain_text("Offline")
    await app.set_offline(False)

    rep = await phones.open(server.url)
    await rep.open()
    await rep.login("alice")
    await expect(rep.tid("nav-team")).to_be_hidden()
    await rep.go("#/import")
    await expect(rep.tid("team-not-manager")).to_be_visible()
