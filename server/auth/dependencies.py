"""The caller, from the bearer token: every /api/ handler but login asks for it."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from server.auth.services import actor_for_token
from server.core.actor import Actor
from server.errors import ApiError


async def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "Send 'Authorization: Bearer TOKEN'; log in first.")
    if len(token) > 200:
        raise ApiError(401, "invalid_token", "The token is not valid; log in again.")
    actor = await actor_for_token(token)
    if actor is None:
        raise ApiError(
            401, "invalid_token", "The token is unknown, expired or revoked; log in again."
        )
    return actor


def require_manager(actor: Actor) -> None:
    if not actor.is_manager:
        raise ApiError(403, "forbidden", "Only a manager or an admin may do this.")


# Handlers ask for the caller as `actor: CurrentActor`.
CurrentActor = NamedDependency[Actor]
