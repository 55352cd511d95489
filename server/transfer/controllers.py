"""Export, import and duplicates (SPEC sections 8 and 9)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from server.auth.dependencies import CurrentActor, require_manager
from server.errors import ApiError
from server.transfer import export, importing, services
from server.transfer.reading import MAX_BYTES

Flag = Annotated[str | None, QueryParameter(max_length=10)]
Text = Annotated[str | None, QueryParameter(max_length=60)]
Limit = Annotated[int, QueryParameter(ge=1, le=1000)]


def _flag(value: str | None, name: str) -> bool:
    if value is None or value.lower() in ("false", "0", "no"):
        return False
    if value.lower() in ("true", "1", "yes"):
        return True
    raise ApiError(400, "malformed", f"{name} must be true or false.")


def _import_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(404, "not_found", "There is no import with this id.") from None


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


class ImportController(Controller):
    """Managers and admins."""

    path = "/api/import"
    tags = ["import"]

    @post(
        "/{name:str}",
        operation_id="import_table",
        status_code=200,
        request_max_body_size=MAX_BYTES,
    )
    async def run(
        self,
        actor: CurrentActor,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        dry_run: Flag = None,
        on_duplicate: Text = None,
        import_id: Text = None,
        background: Flag = None,
    ) -> Response[dict[str, Any]]:
        """Import a CSV or xlsx file into `accounts` or `contacts` (the body is the file):
        the report; with `background=true`, 202 and the import as it starts (its progress
        at GET /api/import/{import_id})."""
        require_manager(actor)
        if name not in importing.IMPORTABLE:
            raise ApiError(404, "not_found", "Import accounts or contacts.")
        in_background = _flag(background, "background")
        body = await request.body()
        answer = await importing.run_import(
            actor,
            name,
            body,
            dry_run=_flag(dry_run, "dry_run"),
            on_duplicate=on_duplicate or "skip",
            import_id=import_id,
            background=in_background,
        )
        return Response(answer, status_code=202 if in_background else 200)

    @get("/{name:str}", operation_id="import_status")
    async def status(self, actor: CurrentActor, name: FromPath[str]) -> dict[str, Any]:
        """An import's progress, report and geocoding."""
        require_manager(actor)
        return await services.import_status(actor, _import_id(name))

    @delete("/{name:str}", operation_id="revert_import", status_code=200)
    async def revert(self, actor: CurrentActor, name: FromPath[str]) -> dict[str, Any]:
        """Revert an import: what it created is deleted, what it filled emptied, unless
        changed since (listed)."""
        require_manager(actor)
        return await services.revert_import(actor, _import_id(name))


class DuplicatesController(Controller):
    path = "/api/duplicates"
    tags = ["duplicates"]

    @get("/{table:str}", operation_id="find_duplicates")
    async def find(self, actor: CurrentActor, table: FromPath[str], limit: Limit = 100) -> Any:
        """Groups of accounts or contacts the caller sees that are likely the same."""
        if table not in ("accounts", "contacts"):
            raise ApiError(404, "not_found", "Find duplicates of accounts or contacts.")
        return await services.find_duplicates(actor, table, limit)
