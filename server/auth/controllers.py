from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from server.auth import services
from server.auth.addresses import client_address
from server.auth.dependencies import CurrentActor
from server.auth.schemas import (
    LoginRequest,
    LoginResponse,
    MeResponse,
    TeamsResponse,
    UserOut,
    UserPatch,
    UsersResponse,
)
from server.auth.throttle import Throttle, Throttled
from server.core.actor import Actor
from server.settings import Settings

T = TypeVar("T")


def user_out(actor: Actor) -> UserOut:
    return UserOut(
        id=actor.user_id, username=actor.username, role=actor.role, team_id=actor.team_id
    )


def throttled_response(_: Request[Any, Any, Any], exc: Throttled) -> Response[Any]:
    seconds = exc.retry_after_s
    return Response(
        {
            "error": "too_many_attempts",
            "detail": f"Too many failed logins; try again in {seconds} seconds.",
            "retry_after_s": seconds,
        },
        status_code=429,
        headers={"Retry-After": str(seconds)},
    )


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]
    exception_handlers = {Throttled: throttled_response}

    @post("/login", operation_id="login", status_code=HTTP_200_OK)
    async def login(
        self,
        data: JSONBody[LoginRequest],
        request: Request[Any, Any, Any],
        settings: NamedDependency[Settings],
    ) -> LoginResponse:
        address = client_address(
            request.client.host if request.client else None,
            request.headers.getall("x-forwarded-for", []),
            settings.trusted_proxies,
        )
        token, actor = await services.login(
            data.username,
            data.password,
            address,
            throttle=Throttle.from_settings(settings),
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

    @patch("/users/{user_id:str}", operation_id="change_user")
    async def change_user(
        self, user_id: FromPath[str], data: JSONBody[UserPatch], actor: CurrentActor
    ) -> UserOut:
        """An admin changes a user's role, team, password or whether they are active."""
        change = await services.change_user_by_id(
            actor,
            user_id,
            role=_sent(data.role),
            team_id=_sent(data.team_id),
            password=_sent(data.password),
            active=_sent(data.active),
        )
        return change.user

    @get("/teams", operation_id="list_teams")
    async def teams(self, actor: CurrentActor) -> TeamsResponse:
        return await services.list_teams(actor)


def _sent(value: T | msgspec.UnsetType) -> T | None:
    return None if isinstance(value, msgspec.UnsetType) else value
