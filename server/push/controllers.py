"""`/api/push`: the server's VAPID public key and the browsers' push subscriptions (SPEC 6)."""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from server.auth.dependencies import CurrentActor
from server.push import services
from server.settings import Settings

# A subscription is an URL under 2 KiB and two short keys; anything much larger is not one.
MAX_BODY_BYTES = 16 * 1024


class VapidPublicKey(msgspec.Struct, kw_only=True, omit_defaults=True):
    key: str  # base64url of the uncompressed P-256 point, for applicationServerKey


class SubscriptionKeys(msgspec.Struct, kw_only=True, omit_defaults=True):
    p256dh: str
    auth: str


class SubscriptionIn(msgspec.Struct, kw_only=True, omit_defaults=True):
    """PushSubscription.toJSON(); fields a newer browser adds are ignored."""

    endpoint: str
    keys: SubscriptionKeys
    expirationTime: float | None = None  # noqa: N815 - the browser's own spelling


class SubscriptionOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    endpoint: str


class Unsubscribe(msgspec.Struct, kw_only=True, omit_defaults=True):
    endpoint: str


class PushController(Controller):
    path = "/api/push"
    tags = ["push"]

    @get("/vapid-public-key", operation_id="push_vapid_public_key")
    async def public_key(self, actor: CurrentActor) -> VapidPublicKey:
        """The key to pass to pushManager.subscribe() as applicationServerKey."""
        key = await services.vapid_key()
        return VapidPublicKey(key=key.public_key_b64url)

    @post(
        "/subscriptions",
        operation_id="push_subscribe",
        status_code=HTTP_201_CREATED,
        request_max_body_size=MAX_BODY_BYTES,
    )
    async def subscribe(
        self,
        actor: CurrentActor,
        settings: NamedDependency[Settings],
        data: JSONBody[SubscriptionIn],
    ) -> SubscriptionOut:
        """Store this browser's subscription for the caller (again is fine: it is updated)."""
        keys = {"p256dh": data.keys.p256dh, "auth": data.keys.auth}
        endpoint = await services.save_subscription(
            actor, data.endpoint, keys, services.allowed_hosts(settings)
        )
        return SubscriptionOut(endpoint=endpoint)

    @delete(
        "/subscriptions",
        operation_id="push_unsubscribe",
        status_code=HTTP_204_NO_CONTENT,
        request_max_body_size=MAX_BODY_BYTES,
    )
    async def unsubscribe(self, actor: CurrentActor, data: JSONBody[Unsubscribe]) -> None:
        """Stop reminders to this browser for the caller."""
        await services.delete_subscription(actor, data.endpoint)
