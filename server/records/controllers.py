"""REST for the records: list, read, create, update, delete; scoped to the caller."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from server.auth.dependencies import CurrentActor, require_manager
from server.core.fields import TABLE_FIELDS
from server.errors import ApiError
from server.records import services

Limit = Annotated[int, QueryParameter(ge=1, le=services.MAX_PAGE)]
Offset = Annotated[int, QueryParameter(ge=0, le=10_000_000)]
Query = Annotated[str | None, QueryParameter(max_length=200)]


class ReassignRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    owner_id: str | None = None
    team_id: str | None = None


class ApplyRejectionRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    account_id: str | None = None  # attach the write to another account the manager sees


def _fields(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ApiError(400, "malformed", "The body must be a JSON object of fields.")
    return data


def record_controller(table: str) -> type[Controller]:
    """The five REST endpoints of one table, each with its own operation id."""
    singular = table[:-1]

    class RecordController(Controller):
        path = f"/api/{table}"
        tags = [table]

        @get("/", operation_id=f"list_{table}")
        async def list_(
            self,
            actor: CurrentActor,
            q: Query = None,
            status: Query = None,
            account_id: Query = None,
            limit: Limit = 50,
            offset: Offset = 0,
        ) -> dict[str, Any]:
            return await services.list_records(
                actor, table, q=q, status=status, account_id=account_id, limit=limit, offset=offset
            )

        @get("/{record_id:str}", operation_id=f"get_{singular}")
        async def read(self, actor: CurrentActor, record_id: FromPath[str]) -> dict[str, Any]:
            if table == "accounts":
                return await services.get_account(actor, record_id)
            return await services.get_record(actor, table, record_id)

        @post("/", operation_id=f"create_{singular}", status_code=HTTP_201_CREATED)
        async def create(
            self, actor: CurrentActor, data: JSONBody[dict[str, Any]]
        ) -> dict[str, Any]:
            fields = dict(_fields(data))
            raw_id = fields.pop("id", None) or str(uuid.uuid4())
            if not isinstance(raw_id, str):
                raise ApiError(422, "invalid_id", "id must be a UUID string.")
            try:
                record_id = str(uuid.UUID(raw_id))
            except ValueError:
                raise ApiError(422, "invalid_id", "id must be a UUID.") from None
            existing = await services.write_exists(table, record_id)
            if existing:
                raise ApiError(409, "exists", f"A {singular} with this id exists already.")
            row = await services.write(actor, table, record_id, "upsert", fields)
            assert row is not None
            return row

        @patch("/{record_id:str}", operation_id=f"update_{singular}")
        async def update(
            self, actor: CurrentActor, record_id: FromPath[str], data: JSONBody[dict[str, Any]]
        ) -> dict[str, Any] | Response[dict[str, Any]]:
            record_id = services.parse_id(record_id)
            fields = _fields(data)
            row = await services.write(actor, table, record_id, "upsert", fields, may_create=False)
            assert row is not None
            if row["id"] != record_id:  # merged away: the write landed on its survivor
                return Response(row, headers={"Content-Location": f"/api/{table}/{row['id']}"})
            return row

        @delete(
            "/{record_id:str}", operation_id=f"delete_{singular}", status_code=HTTP_204_NO_CONTENT
        )
        async def remove(self, actor: CurrentActor, record_id: FromPath[str]) -> None:
            await services.write(actor, table, services.parse_id(record_id), "delete", {})

    RecordController.__name__ = f"{table.capitalize()}Controller"
    return RecordController


class ReassignController(Controller):
    path = "/api/accounts"
    tags = ["accounts"]

    @post("/{record_id:str}/reassign", operation_id="reassign_account", status_code=200)
    async def reassign(
        self, actor: CurrentActor, record_id: FromPath[str], data: JSONBody[ReassignRequest]
    ) -> dict[str, Any]:
        """Give an account to another rep or team (managers and admins)."""
        require_manager(actor)
        fields = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
        if not fields:
            raise ApiError(422, "invalid", "Give owner_id, team_id or both.")
        row = await services.write(
            actor, "accounts", services.parse_id(record_id), "upsert", fields, may_create=False
        )
        return row or {}


class RejectionsController(Controller):
    path = "/api/rejections"
    tags = ["rejections"]

    @post("/{record_id:str}/apply", operation_id="apply_rejection", status_code=200)
    async def apply(
        self,
        actor: CurrentActor,
        record_id: FromPath[str],
        data: JSONBody[ApplyRejectionRequest | None] = None,
    ) -> dict[str, Any]:
        """Apply a refused write again, as it was or on another account (SPEC 4 rule 12):
        managers and admins."""
        require_manager(actor)
        account_id = data.account_id if data is not None else None
        return await services.apply_rejection(actor, services.parse_id(record_id), account_id)


RECORD_CONTROLLERS = [record_controller(table) for table in TABLE_FIELDS]

__all__ = ["RECORD_CONTROLLERS", "ReassignController", "RejectionsController", "Response"]
