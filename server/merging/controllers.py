"""`POST /api/merge` and `POST /api/merge/{merge_id}/undo` (SPEC section 9)."""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import FromPath, JSONBody

from server.auth.dependencies import CurrentActor
from server.merging import services
from server.merging.schemas import MergeAnswer, MergeRequest, UndoAnswer


class MergeController(Controller):
    path = "/api/merge"
    tags = ["merge"]

    @post("/", operation_id="merge_records", status_code=200)
    async def merge(self, actor: CurrentActor, data: JSONBody[MergeRequest]) -> MergeAnswer:
        """Merge accounts (managers and admins) or contacts into a survivor."""
        return await services.merge(actor, data)

    @post("/{merge_id:str}/undo", operation_id="undo_merge", status_code=200)
    async def undo(self, actor: CurrentActor, merge_id: FromPath[str]) -> UndoAnswer:
        """Bring the merged records back, with what was moved from them."""
        return await services.undo(actor, merge_id)
