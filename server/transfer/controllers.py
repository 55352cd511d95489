"""Export, import and duplicates (SPEC sections 8 and 9)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath
from litestar.response import Stream

from server.auth.dependencies import CurrentActor
from server.errors import ApiError
from server.transfer import export


class ExportController(Controller):
    path = "/api/export"
    tags = ["export"]

    @get("/{name:str}", operation_id="export_table")
    async def export(self, actor: CurrentActor, name: FromPath[str]) -> Stream:
        """Every row of a table the caller sees: `accounts.csv`, ..., `deals.csv`, or the
        contacts as vCard 4.0, `contacts.vcf`."""
        table, _, suffix = name.partition(".")
        if name == "contacts.vcf":
            return Stream(
                export.vcard_export(actor),
                media_type="text/vcard; charset=utf-8",
                headers={"Content-Disposition": 'attachment; filename="contacts.vcf"'},
            )
        if suffix != "csv" or table not in export.EXPORTED:
            raise ApiError(
                404,
                "not_found",
                "Export one of accounts, contacts, visits, notes, tasks, deals as .csv,"
                " or contacts.vcf.",
            )
        return Stream(
            export.csv_export(actor, table),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{table}.csv"'},
        )
