"""`/api/push`: the VAPID public key and the browsers' subscriptions (SPEC 6), on both engines."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import msgspec
import pytest

from server import db
from server.core.actor import Actor
from server.errors import ApiError
from server.push import services
from server.push.services import MAX_SUBSCRIPTIONS_PER_USER
from server.settings import Settings, parse_database_url
from tests.conftest import Database
from tests.factories import login_as
from tests.support.push_service import PushService
from tests.unit.test_push_endpoints import HOSTILE_ENDPOINTS

KEY_PATH = "/api/push/vapid-public-key"
SUBSCRIPTIONS = "/api/push/subscriptions"


@pytest.fixture
def push_service():
    with PushService() as service:
        yield service
        assert not service.errors


# A push service allowed by name (the strict rules: https, port 443, public addresses).
LISTED_HOST = "push.fieldcrm.example"


@pytest.fixture
def settings(database: Database, push_service: PushService) -> Settings:
    """The local push service is allowed as a whole origin (scheme, address and port)."""
    allowed = f"{push_service.origin},{LISTED_HOST}"
    return Settings(database=database.config, push_allowed_hosts=allowed)


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def _stored(user_id: str | None = None) -> list[dict[str, Any]]:
    rows = await db.fetch("SELECT user_id, endpoint, p256dh, auth FROM push_subscriptions")
    found = [{**row, "user_id": str(row["user_id"])} for row in rows]
    return [row for row in found if user_id is None or row["user_id"] == user_id]


async def test_vapid_public_key_is_an_uncompressed_p256_point_and_stays_the_same(client):
    alice = await login_as(client)

    first = await client.get(KEY_PATH, headers=alice.headers)
    second = await client.get(KEY_PATH, headers=alice.headers)

    assert first.status_code == 200, first.text
    key = first.json()["key"]
    assert "=" not in key
    point = _unb64url(key)
    assert len(point) == 65 and point[0] == 0x04
    assert second.json() == {"key": key}


async def test_vapid_key_is_kept_in_the_database(client):
    """Another process on the same database (simulated by forgetting the cache) gets the
    same key: it is read back from push_keys, not made again."""
    alice = await login_as(client)
    key = (await client.get(KEY_PATH, headers=alice.headers)).json()["key"]
    services._key_cache = None

    again = await services.vapid_key()

    assert again.public_key_b64url == key
    rows = await db.fetch("SELECT name FROM push_keys")
    assert [row["name"] for row in rows] == ["vapid"]


async def test_subscribe_stores_the_subscription_for_the_caller(client, push_service):
    alice = await login_as(client)
    subscription = push_service.new_subscription()

    response = await client.post(SUBSCRIPTIONS, json=subscription.info, headers=alice.headers)

    assert response.status_code == 201, response.text
    assert response.json() == {"endpoint": subscription.endpoint}
    stored = await _stored()
    assert stored == [
        {
            "user_id": alice.user_id,
            "endpoint": subscription.endpoint,
            "p256dh": subscription.info["keys"]["p256dh"],
            "auth": subscription.info["keys"]["auth"],
        }
    ]


async def test_subscribing_again_updates_rather_than_duplicates(client, push_service):
    alice = await login_as(client)
    subscription = push_service.new_subscription()
    body = {**subscription.info, "expirationTime": None}

    for _ in range(3):
        response = await client.post(SUBSCRIPTIONS, json=body, headers=alice.headers)
        assert response.status_code == 201, response.text

    assert len(await _stored()) == 1


async def test_an_endpoint_belongs_to_the_user_who_registered_it(client, push_service):
    alice = await login_as(client)
    bob = await login_as(client)
    subscription = push_service.new_subscription()
    other_keys = push_service.new_subscription().info["keys"]
    mine = await client.post(SUBSCRIPTIONS, json=subscription.info, headers=alice.headers)

    taken = await client.post(
        SUBSCRIPTIONS,
        json={"endpoint": subscription.endpoint, "keys": other_keys},
        headers=bob.headers,
    )

    assert mine.status_code == 201, mine.text
    assert taken.status_code == 409, taken.text
    assert taken.json()["error"] == "endpoint_taken"
    assert taken.json()["detail"].endswith(".")
    # Neither the owner nor the keys changed: reminders still reach Alice's browser alone.
    [stored] = await _stored()
    assert (stored["user_id"], stored["p256dh"]) == (
        alice.user_id,
        subscription.info["keys"]["p256dh"],
    )
    # Once Alice deletes it, it is free.
    await client.request(
        "DELETE", SUBSCRIPTIONS, json={"endpoint": subscription.endpoint}, headers=alice.headers
    )
    again = await client.post(SUBSCRIPTIONS, json=subscription.info, headers=bob.headers)
    assert again.status_code == 201, again.text
    assert [row["user_id"] for row in await _stored()] == [bob.user_id]


async def test_two_users_posting_one_endpoint_at_once_get_one_201_and_one_409(client, push_service):
    alice = await login_as(client)
    bob = await login_as(client)
    subscription = push_service.new_subscription()

    answers = await asyncio.gather(
        *(
            client.post(SUBSCRIPTIONS, json=subscription.info, headers=who.headers)
            for who in (alice, bob)
        )
    )

    assert sorted(a.status_code for a in answers) == [201, 409]
    winner = alice if answers[0].status_code == 201 else bob
    assert [row["user_id"] for row in await _stored()] == [winner.user_id]


async def test_padded_keys_are_stored_in_one_spelling(client, push_service):
    alice = await login_as(client)
    subscription = push_service.new_subscription()
    keys = subscription.info["keys"]
    padded = {k: v + "=" * (-len(v) % 4) for k, v in keys.items()}

    response = await client.post(
        SUBSCRIPTIONS,
        json={"endpoint": subscription.endpoint, "keys": padded},
        headers=alice.headers,
    )

    assert response.status_code == 201, response.text
    stored = (await _stored())[0]
    assert (stored["p256dh"], stored["auth"]) == (keys["p256dh"], keys["auth"])


async def test_a_user_keeps_at_most_a_few_subscriptions_the_newest(client, push_service):
    alice = await login_as(client)
    subscriptions = [push_service.new_subscription() for _ in range(MAX_SUBSCRIPTIONS_PER_USER + 2)]

    for subscription in subscriptions:
        response = await client.post(SUBSCRIPTIONS, json=subscription.info, headers=alice.headers)
        assert response.status_code == 201, response.text

    stored = {row["endpoint"] for row in await _stored(alice.user_id)}
    assert len(stored) == MAX_SUBSCRIPTIONS_PER_USER
    assert subscriptions[-1].endpoint in stored


async def test_an_endpoint_on_a_host_that_is_not_allowed_is_refused(client, push_service):
    alice = await login_as(client)
    keys = push_service.new_subscription().info["keys"]

    for endpoint in (
        "https://evil.example.com/push/abc",
        "http://10.0.0.1/push/abc",
        "https://127.0.0.1.evil.com/push/abc",
        "https://fcm.googleapis.com/fcm/send/abc",  # a real service, but not in this list
    ):
        response = await client.post(
            SUBSCRIPTIONS, json={"endpoint": endpoint, "keys": keys}, headers=alice.headers
        )
        assert response.status_code == 422, (endpoint, response.text)
        body = response.json()
        assert body["error"] == "subscription_refused"
        assert "FIELDCRM_PUSH_ALLOWED_HOSTS" in body["detail"] or "https" in body["detail"]
    assert await _stored() == []


async def test_the_default_allowed_hosts_are_the_public_push_services(client, push_service):
    """Without FIELDCRM_PUSH_ALLOWED_HOSTS the local service is refused and FCM accepted."""
    alice = await login_as(client)
    actor = Actor(alice.user_id, alice.username, alice.role, alice.team_id)
    defaults = services.allowed_hosts(Settings(database=parse_database_url("sqlite:///unused")))
    info = push_service.new_subscription().info

    with pytest.raises(ApiError) as refused:
        await services.save_subscription(actor, info["endpoint"], info["keys"], defaults)
    fcm = "https://fcm.googleapis.com/fcm/send/dGVzdA:APA91b"
    await services.save_subscription(actor, fcm, info["keys"], defaults)

    assert refused.value.status == 422
    assert "127.0.0.1" in refused.value.detail
    assert [row["endpoint"] for row in await _stored()] == [fcm]


def hostile_endpoints(service: PushService) -> list[str]:
    """The unit tests' table, aimed at the listed host, and the same tricks on the local
    service's whole origin."""
    port = service.port
    named = [e.replace("fcm.googleapis.com", LISTED_HOST) for _, e in HOSTILE_ENDPOINTS]
    return named + [
        f"http://127.0.0.1:{port}\\@evil.com/push/x",
        f"http://evil.com\\@127.0.0.1:{port}/push/x",
        f"http://user@127.0.0.1:{port}/push/x",
        f"http://127.0.0.1:{port + 1}/push/x",
        f"http://127.0.0.1:0{port}/push/x",
        f"https://127.0.0.1:{port}/push/x",
        f"http://localhost:{port}/push/x",
        f"http://[::ffff:127.0.0.1]:{port}/push/x",
        f"http://2130706433:{port}/push/x",
        f"http://127.0.0.1%2e:{port}/push/x",
        f"http://127.0.0.1.:{port}/push/x",
        f"http://127.0.0.1:{port}/push/x#y",
        f"http://127.0.0.1:{port}/push/\tx",
    ]


async def test_hostile_endpoints_answer_422_with_a_json_error(client, push_service):
    alice = await login_as(client)
    keys = push_service.new_subscription().info["keys"]
    listed = f"https://{LISTED_HOST}/push/abc"
    accepted = await client.post(
        SUBSCRIPTIONS, json={"endpoint": listed, "keys": keys}, headers=alice.headers
    )
    assert accepted.status_code == 201, accepted.text

    for endpoint in hostile_endpoints(push_service):
        response = await client.post(
            SUBSCRIPTIONS, json={"endpoint": endpoint, "keys": keys}, headers=alice.headers
        )

        assert response.status_code == 422, (endpoint, response.text)
        body = response.json()
        assert body["error"] == "subscription_refused", endpoint
        assert body["detail"][0].isupper() and body["detail"].endswith("."), body
    assert [row["endpoint"] for row in await _stored()] == [listed]


MALFORMED_BODIES: list[tuple[str, Any]] = [
    ("not json", b"{endpoint:"),
    ("a list", b"[]"),
    ("a string", b'"https://127.0.0.1/push/x"'),
    ("null", b"null"),
    ("empty object", b"{}"),
    ("no keys", {"endpoint": "http://127.0.0.1:1/push/x"}),
    ("endpoint a number", {"endpoint": 5, "keys": {"p256dh": "x", "auth": "y"}}),
    ("keys a list", {"endpoint": "http://127.0.0.1:1/push/x", "keys": []}),
    ("keys missing auth", {"endpoint": "http://127.0.0.1:1/push/x", "keys": {"p256dh": "x"}}),
    ("keys not base64", {"endpoint": "http://127.0.0.1:1/push/x",
                         "keys": {"p256dh": "!!!", "auth": "???"}}),
    ("p256dh too short", {"endpoint": "http://127.0.0.1:1/push/x",
                          "keys": {"p256dh": "BAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}),
    ("empty endpoint", {"endpoint": "", "keys": {"p256dh": "x", "auth": "y"}}),
    ("ftp endpoint", {"endpoint": "ftp://127.0.0.1/push/x", "keys": {"p256dh": "x", "auth": "y"}}),
    ("spaces", {"endpoint": "http://127.0.0.1/push/ x", "keys": {"p256dh": "x", "auth": "y"}}),
    ("bad port", {"endpoint": "http://127.0.0.1:99999/x", "keys": {"p256dh": "x", "auth": "y"}}),
    ("user info", {"endpoint": "http://u:p@127.0.0.1/x", "keys": {"p256dh": "x", "auth": "y"}}),
    ("unicode", {"endpoint": "http://127.0.0.1/ü", "keys": {"p256dh": "x", "auth": "y"}}),
    ("nul", {"endpoint": "http://127.0.0.1/\u0000", "keys": {"p256dh": "x", "auth": "y"}}),
    ("huge endpoint", {"endpoint": "http://127.0.0.1/" + "a" * 5000,
                       "keys": {"p256dh": "x", "auth": "y"}}),
    ("expirationTime text", {"endpoint": "http://127.0.0.1/x", "expirationTime": "soon",
                             "keys": {"p256dh": "x", "auth": "y"}}),
]  # fmt: skip


async def test_malformed_subscriptions_answer_400_or_422_json(client):
    # One server for every body: each case is a request, not a test of its own, to stay fast.
    alice = await login_as(client)
    headers = {**alice.headers, "Content-Type": "application/json"}

    for name, body in MALFORMED_BODIES:
        content = body if isinstance(body, bytes) else msgspec.json.encode(body)
        response = await client.post(SUBSCRIPTIONS, content=content, headers=headers)

        assert response.status_code in (400, 422), (name, response.text)
        assert set(response.json()) >= {"error", "detail"}, name
    assert await _stored() == []


async def test_a_body_far_too_large_is_refused(client):
    alice = await login_as(client)
    body = {"endpoint": "http://127.0.0.1/x", "keys": {"p256dh": "A" * 100_000, "auth": "x"}}

    response = await client.post(SUBSCRIPTIONS, json=body, headers=alice.headers)

    assert response.status_code == 413, response.text
    assert response.json()["error"] == "too_large"


async def test_unsubscribe_removes_only_the_callers_subscription(client, push_service):
    alice = await login_as(client)
    bob = await login_as(client)
    mine = push_service.new_subscription()
    theirs = push_service.new_subscription()
    await client.post(SUBSCRIPTIONS, json=mine.info, headers=alice.headers)
    await client.post(SUBSCRIPTIONS, json=theirs.info, headers=bob.headers)

    not_mine = await client.request(
        "DELETE", SUBSCRIPTIONS, json={"endpoint": theirs.endpoint}, headers=alice.headers
    )
    removed = await client.request(
        "DELETE", SUBSCRIPTIONS, json={"endpoint": mine.endpoint}, headers=alice.headers
    )
    again = await client.request(
        "DELETE", SUBSCRIPTIONS, json={"endpoint": mine.endpoint}, headers=alice.headers
    )

    assert (not_mine.status_code, removed.status_code, again.status_code) == (204, 204, 204)
    assert [row["endpoint"] for row in await _stored()] == [theirs.endpoint]


async def test_malformed_unsubscribe_answers_400_json(client):
    alice = await login_as(client)
    headers = {**alice.headers, "Content-Type": "application/json"}

    for content in (b"", b"{}", b"[]", b'{"endpoint": 7}', b"{nope", b"null"):
        response = await client.request("DELETE", SUBSCRIPTIONS, content=content, headers=headers)

        assert response.status_code == 400, (content, response.text)
        assert set(response.json()) >= {"error", "detail"}


async def test_every_push_endpoint_needs_the_bearer_token(client):
    body = {"endpoint": "http://127.0.0.1/x", "keys": {"p256dh": "x", "auth": "y"}}
    for method, path in (("GET", KEY_PATH), ("POST", SUBSCRIPTIONS), ("DELETE", SUBSCRIPTIONS)):
        for authorization in (None, "Bearer not-a-token", "Basic eDp5", "Bearer"):
            headers = {"Authorization": authorization} if authorization else {}

            response = await client.request(method, path, json=body, headers=headers)

            assert response.status_code == 401, (method, path, authorization, response.text)
            assert response.json()["error"] in ("unauthorized", "invalid_token")
