"""Push reminders' business rules: the server's VAPID key, kept in the database, and the
browsers' subscriptions, stored per user after their endpoint and keys are checked."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.base import Engine

from server import db
from server.core.actor import Actor
from server.errors import ApiError
from server.push.endpoints import (
    PushSubscriptionRefused,
    check_subscription,
    parse_allowed_hosts,
)
from server.push.vapid import (
    VapidKey,
    b64url_decode,
    b64url_encode,
    generate_private_pem,
    vapid_key_from_pem,
)
from server.settings import Settings

log = logging.getLogger("fieldcrm.push")

KEY_NAME = "vapid"
# A phone, a tablet and a few browsers each; more is a script, and each one costs a
# request per reminder. The oldest go first.
MAX_SUBSCRIPTIONS_PER_USER = 20

_key_cache: tuple[Engine[Any], VapidKey] | None = None


def now_utc() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def push_transaction() -> AsyncIterator[None]:
    """A transaction for the push tables. SQLite has one writer, so it takes the writer's lock
    (a transaction there would otherwise wait on the sync writer's, or fail as busy); on
    PostgreSQL row locks are enough and the sync writers are not held up."""
    async with db.transaction():
        yield


async def vapid_key() -> VapidKey:
    """The server's VAPID key: read from push_keys, made there on first use.

    Several processes starting on a fresh database race to insert their own new key; the
    insert keeps the first and every process reads that one back, so browsers never subscribe
    with a key that is then replaced. Cached per database engine.
    """
    global _key_cache
    engine = db.engine()
    if _key_cache is not None and _key_cache[0] is engine:
        return _key_cache[1]
    rows = await db.fetch("SELECT private_key FROM push_keys WHERE name = {}", KEY_NAME)
    if not rows:
        await db.fetch(
            "INSERT INTO push_keys (name, private_key, created_at) VALUES ({}, {}, {})"
            " ON CONFLICT (name) DO NOTHING",
            KEY_NAME,
            generate_private_pem().decode("ascii"),
            now_utc(),
        )
        rows = await db.fetch("SELECT private_key FROM push_keys WHERE name = {}", KEY_NAME)
        log.info("made the server's VAPID key (push_keys)")
    key = vapid_key_from_pem(
        str(rows[0]["private_key"]).encode("ascii"),
        where="The VAPID key in the push_keys table",
        advice=(
            "Restore that row from a backup, or delete it to make a new key (every browser "
            "will then have to subscribe to reminders again)."
        ),
    )
    _key_cache = (engine, key)
    return key


@functools.lru_cache(maxsize=8)
def _parsed_hosts(value: str | None) -> tuple[str, ...]:
    return parse_allowed_hosts(value)


def allowed_hosts(settings: Settings) -> tuple[str, ...]:
    """FIELDCRM_PUSH_ALLOWED_HOSTS, parsed; a bad value answers 503 rather than a 500."""
    try:
        return _parsed_hosts(settings.push_allowed_hosts)
    except ValueError as exc:
        log.error("%s", exc)
        raise ApiError(
            503,
            "push_unavailable",
            "Push reminders are not configured correctly on this server; the log says why.",
        ) from None


async def save_subscription(
    actor: Actor, endpoint: str, keys: dict[str, Any], allowed: tuple[str, ...]
) -> str:
    """Store the caller's subscription (a new one, or their own endpoint with fresh keys).

    An endpoint belongs to the user who registered it until they delete it (SPEC 6): another
    user posting it gets a 409, so nobody can take over someone's reminders, or learn them, by
    replaying an endpoint. A browser signing out unsubscribes, so the next user of the device
    gets an endpoint of their own.
    """
    try:
        check_subscription({"endpoint": endpoint, "keys": keys}, allowed)
    except PushSubscriptionRefused as exc:
        raise ApiError(422, "subscription_refused", exc.detail) from None
    # One spelling of the keys (no padding), however the browser wrote them.
    p256dh = b64url_encode(b64url_decode(keys["p256dh"]))
    auth = b64url_encode(b64url_decode(keys["auth"]))
    async with push_transaction():
        # The unique endpoint serialises concurrent posts; the update applies only to the
        # owner's own row, so a row comes back unless someone else holds the endpoint.
        saved = await db.fetch(
            "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at)"
            " VALUES ({}, {}, {}, {}, {}, {}) ON CONFLICT (endpoint) DO UPDATE SET"
            " p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, created_at = EXCLUDED.created_at"
            " WHERE push_subscriptions.user_id = EXCLUDED.user_id RETURNING id",
            str(uuid.uuid4()),
            actor.user_id,
            endpoint,
            p256dh,
            auth,
            now_utc(),
        )
        if not saved:
            raise ApiError(
                409,
                "endpoint_taken",
                "This push endpoint is registered to another user. Sign them out on this "
                "browser (which ends their subscription), then turn reminders on again.",
            )
        await db.fetch(
            "DELETE FROM push_subscriptions WHERE user_id = {} AND id NOT IN"
            " (SELECT id FROM push_subscriptions WHERE user_id = {}"
            " ORDER BY created_at DESC, id LIMIT {})",
            actor.user_id,
            actor.user_id,
            MAX_SUBSCRIPTIONS_PER_USER,
        )
    return endpoint


async def delete_subscription(actor: Actor, endpoint: str) -> None:
    """Forget the caller's subscription with this endpoint; nothing happens if there is none
    (the browser may ask twice, or after the server dropped it on a 410)."""
    async with push_transaction():
        rows = await db.fetch(
            "DELETE FROM push_subscriptions WHERE endpoint = {} AND user_id = {} RETURNING id",
            endpoint,
            actor.user_id,
        )
        for row in rows:
            await db.fetch("DELETE FROM push_deliveries WHERE subscription_id = {}", str(row["id"]))
