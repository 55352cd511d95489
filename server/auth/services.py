"""Users and teams, logging in, tokens, and who may see or change which users and teams.

Passwords are hashed in server/auth/passwords.py, failed logins slowed down in
server/auth/throttle.py; docs/security.md says what each guarantees.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
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
TEAM_MAX = 100
PASSWORD_MIN = 8


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def now_utc() -> datetime:
    return datetime.now(UTC)


def check_role(role: str) -> None:
    if role not in ROLES:
        raise ApiError(422, "invalid", f"role must be one of {', '.join(ROLES)}")


def check_password(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise ApiError(422, "invalid", f"password must be at least {PASSWORD_MIN} characters")


def check_team(team: str) -> None:
    if not team or len(team) > TEAM_MAX:
        raise ApiError(422, "invalid", f"team must be 1 to {TEAM_MAX} characters")


async def create_user(username: str, password: str, role: str, team: str) -> tuple[str, bool]:
    """Create a user (and the team if new). Returns (user id, team created)."""
    check_role(role)
    if not username or len(username) > USERNAME_MAX or not username.isprintable():
        raise ApiError(422, "invalid", "username must be 1 to 100 printable characters")
    check_password(password)
    check_team(team)
    password_hash = await passwords.hash_in_pool(password)
    async with db.write_transaction():
        if await db.fetch("SELECT id FROM users WHERE username = {}", username):
            raise ApiError(409, "user_exists", f"a user named {username!r} exists already")
        team_id, created = await _team_named(team)
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
        "SELECT id, username, password_hash, role, team_id, active, scope_version FROM users"
        " WHERE username = {}",
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
    return token, _actor(user, token_id)


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


def _actor(row: dict[str, Any], token_id: str) -> Actor:
    return Actor(
        user_id=str(row["id"]),
        username=row["username"],
        role=row["role"],
        team_id=str(row["team_id"]),
        token_id=token_id,
        scope_version=int(row["scope_version"]),
    )


async def actor_for_token(token: str) -> Actor | None:
    """The user a live token belongs to, or None (unknown, expired, revoked, or its user
    inactive)."""
    rows = await db.fetch(
        "SELECT t.id AS token_id, t.expires_at, t.revoked_at, u.id, u.username, u.role,"
        " u.team_id, u.active, u.scope_version FROM auth_tokens t"
        " JOIN users u ON u.id = t.user_id WHERE t.token_hash = {}",
        token_digest(token),
    )
    if not rows:
        return None
    row = rows[0]
    if row["revoked_at"] is not None or not row["active"] or row["expires_at"] <= now_utc():
        return None
    return _actor(row, str(row["token_id"]))


async def actor_for_user(user_id: str) -> Actor | None:
    """An active user as an Actor (for work done in their name without a token, such as
    their calendar feed), or None."""
    rows = await db.fetch(
        "SELECT id, username, role, team_id, active, scope_version FROM users WHERE id = {}",
        user_id,
    )
    if not rows or not rows[0]["active"]:
        return None
    return _actor(rows[0], "")


async def revoke(token_id: str) -> None:
    await db.fetch("UPDATE auth_tokens SET revoked_at = {} WHERE id = {}", now_utc(), token_id)


async def revoke_all(user_id: str) -> int:
    """Revoke every live token of a user at once; returns how many there were."""
    rows = await db.fetch(
        "UPDATE auth_tokens SET revoked_at = {} WHERE user_id = {} AND revoked_at IS NULL"
        " RETURNING id",
        now_utc(),
        user_id,
    )
    return len(rows)


@dataclass(frozen=True)
class UserChange:
    """What `change_user` did."""

    user: UserOut
    team: str  # the team's name
    active: bool
    team_created: bool = False
    password_set: bool = False
    tokens_revoked: int = 0
    rescoped: bool = False  # what they see changed: their devices reset at their next sync


async def change_user(
    username: str,
    *,
    role: str | None = None,
    team: str | None = None,
    password: str | None = None,
    active: bool | None = None,
    by: str = "the command line",
) -> UserChange:
    """Change a user by username; `team` is a team's name (made if new). None leaves a
    value as it is. See `_change` for what follows from each change."""
    if role is not None:
        check_role(role)
    if team is not None:
        check_team(team)
    if password is not None:
        check_password(password)
    password_hash = await passwords.hash_in_pool(password) if password is not None else None
    async with db.transaction():
        rows = await db.fetch(f"{_USER_ROW} WHERE username = {{}}", username)
        if not rows:
            raise ApiError(404, "unknown_user", f"there is no user named {username!r}")
        team_id, created = await _team_named(team) if team is not None else (None, False)
        change = await _change(rows[0], role, team_id, password_hash, active)
    change = dataclasses.replace(change, team_created=created)
    _log_change(change, rows[0], by)
    return change


async def change_user_by_id(
    actor: Actor,
    user_id: str,
    *,
    role: str | None = None,
    team_id: str | None = None,
    password: str | None = None,
    active: bool | None = None,
) -> UserChange:
    """An admin's change to a user (PATCH /api/users/{id}); `team_id` must be a team's id.
    An admin cannot deactivate or demote themselves here (so that there is always one
    left): another admin, or `fieldcrm user set`, can."""
    if not actor.is_admin:
        raise ApiError(403, "forbidden", "Only an admin may change users.")
    if not _is_uuid(user_id):
        raise ApiError(404, "not_found", "There is no such user.")
    if role is not None:
        check_role(role)
    if password is not None:
        check_password(password)
    if user_id == actor.user_id and (active is False or role not in (None, "admin")):
        raise ApiError(
            422, "invalid", "You cannot deactivate or demote yourself; another admin can."
        )
    if team_id is not None and not (
        _is_uuid(team_id) and await db.fetch("SELECT id FROM teams WHERE id = {}", team_id)
    ):
        raise ApiError(422, "invalid", "team_id is not a team's id (see GET /api/teams).")
    password_hash = await passwords.hash_in_pool(password) if password is not None else None
    async with db.transaction():
        rows = await db.fetch(f"{_USER_ROW} WHERE id = {{}}", user_id)
        if not rows:
            raise ApiError(404, "not_found", "There is no such user.")
        change = await _change(rows[0], role, team_id, password_hash, active)
    _log_change(change, rows[0], f"admin {actor.username!r}")
    return change


_USER_ROW = "SELECT id, username, role, team_id, active, scope_version FROM users"


async def _change(
    row: dict[str, Any],
    role: str | None,
    team_id: str | None,
    password_hash: str | None,
    active: bool | None,
) -> UserChange:
    """Store a user's new values, in the caller's transaction. A change of what they see
    (another team, or a role with other scopes) bumps their scope version, so that each of their
    devices gets a reset at its next sync (server/syncing/services.py); another team is kept
    in team_moves (rule 11: what they wrote in the old team before the move still lands);
    deactivating them or setting their password revokes every token they hold."""
    user_id = str(row["id"])
    role = role if role is not None else row["role"]
    team_id = team_id if team_id is not None else str(row["team_id"])
    active = active if active is not None else bool(row["active"])
    before = Actor(user_id=user_id, username="", role=row["role"], team_id=str(row["team_id"]))
    after = Actor(user_id=user_id, username="", role=role, team_id=team_id)
    rescoped = before.scopes != after.scopes
    await db.fetch(
        "UPDATE users SET role = {}, team_id = {}, active = {}, scope_version = scope_version + {}"
        " WHERE id = {}",
        role,
        team_id,
        active,
        1 if rescoped else 0,
        user_id,
    )
    if team_id != str(row["team_id"]):
        # Rule 11: what they wrote in their old team before this still lands there.
        await db.fetch(
            "INSERT INTO team_moves (id, user_id, from_team, to_team, moved_at_ms)"
            " VALUES ({}, {}, {}, {}, {})",
            str(uuid.uuid4()),
            user_id,
            str(row["team_id"]),
            team_id,
            int(time.time() * 1000),
        )
    if password_hash is not None:
        await db.fetch("UPDATE users SET password_hash = {} WHERE id = {}", password_hash, user_id)
    revoked = await revoke_all(user_id) if (not active or password_hash is not None) else 0
    user = UserOut(id=user_id, username=row["username"], role=role, team_id=team_id)
    team = await db.fetch("SELECT name FROM teams WHERE id = {}", team_id)
    return UserChange(
        user=user,
        team=team[0]["name"],
        active=active,
        password_set=password_hash is not None,
        tokens_revoked=revoked,
        rescoped=rescoped,
    )


def _log_change(change: UserChange, before: dict[str, Any], by: str) -> None:
    log.info(
        "user %r changed by %s: role %s -> %s, team %s -> %s, active %s -> %s,%s"
        " %d tokens revoked%s",
        change.user.username, by, before["role"], change.user.role, before["team_id"],
        change.user.team_id, bool(before["active"]), change.active,
        " password set," if change.password_set else "", change.tokens_revoked,
        ", devices reset at their next sync" if change.rescoped else "",
    )  # fmt: skip


async def _team_named(team: str) -> tuple[str, bool]:
    """The id of the team of that name, made if new, inside the caller's write
    transaction; and whether it was made."""
    rows = await db.fetch("SELECT id FROM teams WHERE name = {}", team)
    if rows:
        return str(rows[0]["id"]), False
    team_id = str(uuid.uuid4())
    await db.fetch(
        "INSERT INTO teams (id, name, created_at) VALUES ({}, {}, {})", team_id, team, now_utc()
    )
    return team_id, True


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


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
