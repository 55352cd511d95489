"""Users and teams, logging in, tokens, and who may see which users and teams.

Passwords are hashed in server/auth/passwords.py, failed logins slowed down in
server/auth/throttle.py; docs/security.md says what each guarantees.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from server import db
from server.auth import passwords
from server.auth.schemas import TeamOut, TeamsResponse, UserOut, UsersResponse
from server.auth.throttle import Throttle, admit, forget_failures
from server.core.actor import ROLES, Actor
from server.errors import ApiError

log = logging.getLogger("fieldcrm.auth")

USERNAME_MAX = 100


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def now_utc() -> datetime:
    return datetime.now(UTC)


async def create_user(username: str, password: str, role: str, team: str) -> tuple[str, bool]:
    """Create a user (and the team if new). Returns (user id, team created)."""
    if role not in ROLES:
        raise ApiError(422, "invalid", f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > USERNAME_MAX or not username.isprintable():
        raise ApiError(422, "invalid", "username must be 1 to 100 printable characters")
    if len(password) < 8:
        raise ApiError(422, "invalid", "password must be at least 8 characters")
    if not team or len(team) > 100:
        raise ApiError(422, "invalid", "team must be 1 to 100 characters")
    password_hash = await passwords.hash_in_pool(password)
    async with db.write_transaction():
        if await db.fetch("SELECT id FROM users WHERE username = {}", username):
            raise ApiError(409, "user_exists", f"a user named {username!r} exists already")
        rows = await db.fetch("SELECT id FROM teams WHERE name = {}", team)
        created = not rows
        team_id = str(uuid.uuid4()) if created else str(rows[0]["id"])
        if created:
            await db.fetch(
                "INSERT INTO teams (id, name, created_at) VALUES ({}, {}, {})",
                team_id,
                team,
                now_utc(),
            )
        user_id = str(uuid.uuid4())
        await db.fetch(
            "INSERT INTO users (id, username, password_hash, role, team_id, active, created_at)"
            " VALUES ({}, {}, {}, {}, {}, {}, {})",
            user_id,
            username,
            password_hash,
            role,
            team_id,
            True,
            now_utc(),
        )
    return user_id, created


async def login(
    username: str, password: str, address: str, *, throttle: Throttle, ttl_s: int
) -> tuple[str, Actor]:
    """A new token for right credentials of an active user; 401 otherwise. Raises
    throttle.Throttled when this (username, address) must wait longer before trying again."""
    attempt = await admit(throttle, username, address)
    rows = await db.fetch(
        "SELECT id, username, password_hash, role, team_id, active FROM users WHERE username = {}",
        username,
    )
    user = rows[0] if rows else None
    stored = user["password_hash"] if user else await passwords.dummy_hash()
    ok = await passwords.verify_in_pool(password, stored)
    if not (user and ok and user["active"]):
        log.warning(
            "failed login for %r from %s (%d recent failures from there)",
            attempt.username,
            address,
            attempt.failures_before + 1,
        )
        raise ApiError(401, "invalid_credentials", "The username or password is wrong.")
    await forget_failures(attempt)
    if passwords.needs_rehash(stored):
        await _upgrade_hash(str(user["id"]), stored, password)
    token = secrets.token_urlsafe(32)
    token_id = str(uuid.uuid4())
    await db.fetch(
        "INSERT INTO auth_tokens (id, token_hash, user_id, created_at, expires_at, revoked_at)"
        " VALUES ({}, {}, {}, {}, {}, {})",
        token_id,
        token_digest(token),
        str(user["id"]),
        now_utc(),
        now_utc() + timedelta(seconds=ttl_s),
        None,
    )
    log.info("login of %r from %s", user["username"], address)
    actor = Actor(
        user_id=str(user["id"]),
        username=user["username"],
        role=user["role"],
        team_id=str(user["team_id"]),
        token_id=token_id,
    )
    return token, actor


async def _upgrade_hash(user_id: str, stored: str, password: str) -> None:
    """Store the password again at today's cost (unless it was changed meanwhile)."""
    upgraded = await passwords.hash_in_pool(password)
    await db.fetch(
        "UPDATE users SET password_hash = {} WHERE id = {} AND password_hash = {}",
        upgraded,
        user_id,
        stored,
    )
    log.info("password hash of user %s upgraded to today's cost", user_id)


async def actor_for_token(token: str) -> Actor | None:
    """The user a live token belongs to, or None (unknown, expired, revoked, inactive)."""
    rows = await db.fetch(
        "SELECT t.id AS token_id, t.expires_at, t.revoked_at, u.id, u.username, u.role,"
        " u.team_id, u.active FROM auth_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.token_hash = {}",
        token_digest(token),
    )
    if not rows:
        return None
    row = rows[0]
    expires = row["expires_at"]
    if row["revoked_at"] is not None or not row["active"] or expires <= now_utc():
        return None
    return Actor(
        user_id=str(row["id"]),
        username=row["username"],
        role=row["role"],
        team_id=str(row["team_id"]),
        token_id=str(row["token_id"]),
    )


async def revoke(token_id: str) -> None:
    await db.fetch("UPDATE auth_tokens SET revoked_at = {} WHERE id = {}", now_utc(), token_id)


async def list_users(actor: Actor) -> UsersResponse:
    """The active users an actor may see, by username: an admin every team's, others their
    own team's."""
    sql = "SELECT id, username, role, team_id FROM users WHERE active = {}"
    args: list[Any] = [True]
    if not actor.is_admin:
        sql += " AND team_id = {}"
        args.append(actor.team_id)
    rows = await db.fetch(sql + " ORDER BY username", *args)
    return UsersResponse(
        users=[
            UserOut(
                id=str(r["id"]),
                username=r["username"],
                role=r["role"],
                team_id=str(r["team_id"]),
            )
            for r in rows
        ]
    )


async def list_teams(actor: Actor) -> TeamsResponse:
    """The teams an actor may see, by name: a manager or an admin every team, a rep their own."""
    sql, args = "SELECT id, name FROM teams", []
    if not actor.is_manager:
        sql += " WHERE id = {}"
        args.append(actor.team_id)
    rows = await db.fetch(sql + " ORDER BY name", *args)
    return TeamsResponse(teams=[TeamOut(id=str(r["id"]), name=r["name"]) for r in rows])
