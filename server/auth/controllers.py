from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from server.auth import services
from server.auth.dependencies import CurrentActor
from server.auth.schemas import (
    LoginRequest,
    LoginResponse,
    MeResponse,
    TeamsResponse,
    UserOut,
    UsersResponse,
)
from server.core.actor import Actor
from server.settings import Settings


def user_out(actor: Actor) -> UserOut:
    return UserOut(
        id=actor.user_id, username=actor.username, role=actor.role, team_id=actor.team_id
    )


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post("/login", operation_id="login", status_code=HTTP_200_OK)
    async def login(
        self,
        data: JSONBody[LoginRequest],
        request: Request[Any, Any, Any],
        settings: NamedDependency[Settings],
    ) -> LoginResponse:
        address = request.client.host if request.client else "unknown"
        token, actor = await services.login(
            data.username,
            data.password,
            address,
            max_failures=settings.login_max_failures,
            window_s=settings.login_window_s,
            ttl_s=settings.token_ttl_s,
        )
        return LoginResponse(token=token, user=user_out(actor))

    @post("/logout", operation_id="logout", status_code=HTTP_204_NO_CONTENT)
    async def logout(self, actor: CurrentActor) -> None:
        await services.revoke(actor.token_id)


class UsersController(Controller):
    path = "/api"
    tags = ["users"]

    @get("/me", operation_id="me")
    async def me(self, actor: CurrentActor) -> MeResponse:
        return MeResponse(user=user_out(actor))

    @get("/users", operation_id="list_users")
    async def users(self, actor: CurrentActor) -> UsersResponse:
        return await services.list_users(actor)

    @get("/teams", operation_id="list_teams")
    async def teams(self, actor: CurrentActor) -> TeamsResponse:
        return await services.list_teams(actor)
