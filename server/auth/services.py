"""Passwords, tokens, the login rate limit, and who may see which users and teams."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from server import db
from server.auth.schemas import TeamOut, TeamsResponse, UserOut, UsersResponse
from server.core.actor import ROLES, Actor
from server.errors import ApiError

# scrypt with N=2**14, r=8: ~50 ms and 16 MiB per guess on this class of machine.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
USERNAME_MAX = 100


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


_DUMMY_HASH = hash_password(secrets.token_hex(8))


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
    password_hash = await asyncio.to_thread(hash_password, password)
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
    username: str, password: str, address: str, *, max_failures: int, window_s: int, ttl_s: int
) -> tuple[str, Actor]:
    """A new token for right credentials; 401 otherwise; 429 after too many failures."""
    since = now_utc() - timedelta(seconds=window_s)
    by_user = await db.fetch(
        "SELECT COUNT(*) AS n FROM login_attempts WHERE username = {} AND at > {}",
        username,
        since,
    )
    by_address = await db.fetch(
        "SELECT COUNT(*) AS n FROM login_attempts WHERE address = {} AND at > {}",
        address,
        since,
    )
    if by_user[0]["n"] >= max_failures or by_address[0]["n"] >= max_failures * 4:
        raise ApiError(
            429,
            "too_many_attempts",
            f"Too many failed logins; try again in {window_s // 60} minutes.",
        )
    rows = await db.fetch(
        "SELECT id, username, password_hash, role, team_id, active FROM users WHERE username = {}",
        username,
    )
    user = rows[0] if rows else None
    stored = user["password_hash"] if user else _DUMMY_HASH
    ok = await asyncio.to_thread(verify_password, password, stored)
    if not (user and ok and user["active"]):
        await db.fetch(
            "INSERT INTO login_attempts (id, username, address, at) VALUES ({}, {}, {}, {})",
            str(uuid.uuid4()),
            username[:USERNAME_MAX],
            address[:64],
            now_utc(),
        )
        raise ApiError(401, "invalid_credentials", "The username or password is wrong.")
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
    actor = Actor(
        user_id=str(user["id"]),
        username=user["username"],
        role=user["role"],
        team_id=str(user["team_id"]),
        token_id=token_id,
    )
    return token, actor


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
