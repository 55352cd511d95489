"""`GET /api/privacy/export` and `POST /api/privacy/erase` (SPEC section 12)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.params import JSONBody, QueryParameter

from server.auth.dependencies import CurrentActor
from server.privacy import services
from server.privacy.schemas import EraseRequest, ErasureAnswer

# Optional to Litestar, so that a call without a token gets its 401 first; the service
# answers 400 for one that is missing.
Text = Annotated[str | None, QueryParameter(max_length=60)]
RecordId = Annotated[str | None, QueryParameter(name="id", max_length=60)]


class PrivacyController(Controller):
    path = "/api/privacy"
    tags = ["privacy"]

    @get("/export", operation_id="privacy_export")
    async def export(
        self,
        actor: CurrentActor,
        table: Text = None,
        record_id: RecordId = None,
    ) -> Response[bytes]:
        """One JSON document with the record, what hangs off it, its history, conflicts,
        refused writes and attachments (a manager of its team, an admin)."""
        document, filename = await services.export(actor, table, record_id)
        return Response(
            document,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @post("/erase", operation_id="privacy_erase", status_code=200)
    async def erase(self, actor: CurrentActor, data: JSONBody[EraseRequest]) -> ErasureAnswer:
        """Erase an account or a contact and what hangs off it from everything the server
        keeps (an admin); only the fact of the erasure stays."""
        return await services.erase(actor, data)
