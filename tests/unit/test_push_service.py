"""The local push service really checks what real ones check; otherwise the sender's tests
would prove nothing. Requests here are built by hand so each can be broken in one way."""

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import http_ece
import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.support.push_service import PushService, Subscription


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sender:
    """An application server written from the RFCs, independent of the code under test."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public_key = b64url(
            self.key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def token(self, claims: dict[str, Any], alg: str = "ES256") -> str:
        header = b64url(json.dumps({"typ": "JWT", "alg": alg}).encode())
        body = b64url(json.dumps(claims).encode())
        der = self.key.sign(f"{header}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{header}.{body}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def request(
        self, service: PushService, subscription: Subscription, payload: object, **claims: Any
    ) -> tuple[dict[str, str], bytes]:
        all_claims = {
            "aud": service.origin,
            "exp": int(time.time()) + 3600,
            "sub": "mailto:ops@fieldcrm.example",
            **claims,
        }
        body = http_ece.encrypt(
            json.dumps(payload).encode(),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=unb64url(subscription.info["keys"]["p256dh"]),
            auth_secret=unb64url(subscription.info["keys"]["auth"]),
            version="aes128gcm",
        )
        headers = {
            "Authorization": f"vapid t={self.token(all_claims)}, k={self.public_key}",
            "TTL": "60",
            "Content-Encoding": "aes128gcm",
        }
        return headers, body


@pytest.fixture
def sender() -> Sender:
    return Sender()


@pytest.fixture
def service(sender: Sender) -> Iterator[PushService]:
    with PushService(expected_vapid_key=sender.public_key) as service:
        yield service
        assert service.errors == []


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        yield client


def post(http: httpx.Client, url: str, headers: dict[str, str], body: bytes) -> int:
    return http.post(url, headers=headers, content=body).status_code


def test_a_correct_message_is_accepted(
    service: PushService, sender: Sender, http: httpx.Client
) -> None:
    subscription = service.new_subscription()
    headers, body = sender.request(service, subscription, {"hello": "world"})

    assert post(http, subscription.endpoint, headers, body) == 201
    assert [m.payload for m in subscription.messages] == [{"hello": "world"}]
    assert service.rejections == []


def test_a_corrupted_body_is_refused(
    service: PushService, sender: Sender, http: httpx.Client
) -> None:
    subscription = service.new_subscription()
    headers, body = sender.request(service, subscription, {"hello": "world"})
    corrupted = body[:-1] + bytes([body[-1] ^ 0x01])

    assert post(http, subscription.endpoint, headers, corrupted) == 400
    assert "decrypt" in service.rejections[0].reason
    assert subscription.messages == []


def test_a_message_for_another_subscription_cannot_be_read(
    service: PushService, sender: Sender, http: httpx.Client
) -> None:
    intended, other = service.new_subscription(), service.new_subscription()
    headers, body = sender.request(service, intended, {"hello": "world"})

    assert post(http, other.endpoint, headers, body) == 400
    assert other.messages == []


def test_a_key_other_than_the_expected_one_is_forbidden(
    service: PushService, http: httpx.Client
) -> None:
    subscription = service.new_subscription()
    headers, body = Sender().request(service, subscription, {"hello": "world"})

    assert post(http, subscription.endpoint, headers, body) == 403


def test_a_forged_signature_is_refused(
    service: PushService, sender: Sender, http: httpx.Client
) -> None:
    subscription = service.new_subscription()
    headers, body = sender.request(service, subscription, {"hello": "world"})
    token = headers["Authorization"].removeprefix("vapid t=").split(",")[0]
    jwt_header, _, signature = token.split(".")
    forged_claims = b64url(json.dumps({"aud": service.origin, "sub": "mailto:x@y.z"}).encode())
    headers["Authorization"] = (
        f"vapid t={jwt_header}.{forged_claims}.{signature}, k={sender.public_key}"
    )

    assert post(http, subscription.endpoint, headers, body) == 401
    assert "signature" in service.rejections[0].reason


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "https://fcm.googleapis.com"}, "aud"),
        ({"exp": int(time.time()) - 10}, "exp"),
        ({"exp": int(time.time()) + 25 * 3600}, "exp"),
        ({"sub": "ops@fieldcrm.example"}, "sub"),
    ],
)
def test_claims_are_checked(
    service: PushService,
    sender: Sender,
    http: httpx.Client,
    claims: dict[str, Any],
    reason: str,
) -> None:
    subscription = service.new_subscription()
    headers, body = sender.request(service, subscription, {"hello": "world"}, **claims)

    assert post(http, subscription.endpoint, headers, body) == 401
    assert reason in service.rejections[0].reason


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"TTL": None}, 400),
        ({"Content-Encoding": "aesgcm"}, 400),
        ({"Urgency": "urgent"}, 400),
        ({"Authorization": None}, 401),
        ({"Authorization": "WebPush abc"}, 401),
    ],
)
def test_headers_are_checked(
    service: PushService,
    sender: Sender,
    http: httpx.Client,
    change: dict[str, str | None],
    status: int,
) -> None:
    subscription = service.new_subscription()
    headers, body = sender.request(service, subscription, {"hello": "world"})
    for name, value in change.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value

    assert post(http, subscription.endpoint, headers, body) == status
    assert subscription.messages == []


def test_a_token_not_signed_with_es256_is_refused(
    service: PushService, sender: Sender, http: httpx.Client
) -> None:
    subscription = service.new_subscription()
    headers, body = sender.request(service, subscription, {"hello": "world"})
    claims = {"aud": service.origin, "exp": int(time.time()) + 60, "sub": "mailto:a@b.c"}
    headers["Authorization"] = f"vapid t={sender.token(claims, alg='none')}, k={sender.public_key}"

    assert post(http, subscription.endpoint, headers, body) == 401


def test_an_unknown_subscription_is_not_found(
    service: PushService, sender: Sender, http: httpx.Client
) -> None:
    subscription = service.new_subscription()
    headers, body = sender.request(service, subscription, {"hello": "world"})

    assert post(http, f"{service.origin}/push/nobody", headers, body) == 404


def test_a_body_over_4096_bytes_is_too_large(
    service: PushService, sender: Sender, http: httpx.Client
) -> None:
    subscription = service.new_subscription()
    headers, body = sender.request(service, subscription, {"text": "x" * 4096})

    assert post(http, subscription.endpoint, headers, body) == 413


def test_scripted_answers_run_out(service: PushService, sender: Sender, http: httpx.Client) -> None:
    subscription = service.new_subscription()
    subscription.respond_with(503, times=2)

    statuses: list[int] = []
    for _ in range(3):
        headers, body = sender.request(service, subscription, {"n": len(statuses)})
        statuses.append(post(http, subscription.endpoint, headers, body))

    assert statuses == [503, 503, 201]
    assert subscription.attempts == 3
    assert [m.payload for m in subscription.messages] == [{"n": 2}]
