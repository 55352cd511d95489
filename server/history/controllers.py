"""`GET /api/history/{table}/{id}` (SPEC section 11)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath

from server.auth.dependencies import CurrentActor
from server.history import services
from server.history.schemas import History


class HistoryController(Controller):
    path = "/api/history"
    tags = ["history"]

    @get("/{table:str}/{record_id:str}", operation_id="record_history")
    async def history(
        self, actor: CurrentActor, table: FromPath[str], record_id: FromPath[str]
    ) -> History:
        """Every applied change to the record, oldest first, with who made it."""
        return await services.history(actor, table, record_id)
