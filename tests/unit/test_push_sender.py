import asyncio
import ipaddress
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from server.push import sender
from server.push.addresses import Resolver, system_resolver
from server.push.endpoints import parse_endpoint
from server.push.sender import MAX_PAYLOAD_BYTES, PinnedAdapter, PushOutcome, backoff_s, send_push
from server.push.vapid import VapidKey, load_or_create_vapid_key
from tests.support.network import Connections, guard_connections
from tests.support.push_service import PushService
from tests.support.tls import TestAuthority
from tests.unit.test_push_addresses import NOT_PUBLIC

SUBJECT = "mailto:ops@fieldcrm.example"
REMINDER: dict[str, Any] = {
    "type": "task_reminder",
    "task_id": "7d0e6a8c-1f0b-4c3e-9a51-2b6f1c9d4e10",
    "title": "Rappeler Müller & Söhne — devis 🚚",
    "account_id": "0b8f3e2a-5c6d-4e7f-8a9b-1c2d3e4f5a6b",
    "account_name": "Müller & Söhne",
    "due_at": "2026-11-24T09:00:00Z",
    "url": "/tasks/7d0e6a8c-1f0b-4c3e-9a51-2b6f1c9d4e10",
}


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> Connections:
    """Nothing leaves this machine; the connections made are noted."""
    return guard_connections(monkeypatch)


@pytest.fixture
def vapid_key(tmp_path: Path) -> VapidKey:
    return load_or_create_vapid_key(tmp_path / "vapid.pem")


@pytest.fixture
def push_service(vapid_key: VapidKey) -> Iterator[PushService]:
    with PushService(expected_vapid_key=vapid_key.public_key_b64url) as service:
        yield service
        assert service.errors == []


def origin_of(subscription: dict[str, Any]) -> tuple[str, ...]:
    """FIELDCRM_PUSH_ALLOWED_HOSTS naming the subscription's push service as a whole origin."""
    parts = urlsplit(subscription["endpoint"])
    return (f"{parts.scheme}://{parts.netloc}",)


async def send(
    subscription: dict[str, Any],
    key: VapidKey,
    *,
    within_s: float = 5.0,
    allowed: tuple[str, ...] | None = None,
    resolver: Resolver = system_resolver,
) -> PushOutcome:
    return await send_push(
        subscription, REMINDER, key, subject=SUBJECT, ttl=3600, timeout=within_s,
        allowed=allowed or origin_of(subscription), resolver=resolver,
    )  # fmt: skip


async def test_the_browser_receives_exactly_the_payload(
    push_service: PushService, vapid_key: VapidKey
) -> None:
    subscription = push_service.new_subscription()

    outcome = await send_push(
        subscription.info, REMINDER, vapid_key, subject=SUBJECT, ttl=900, timeout=5.0,
        allowed=(push_service.origin,),
    )  # fmt: skip

    assert outcome.delivered and outcome.status == 201
    assert not outcome.gone and not outcome.retry
    assert push_service.rejections == []
    [message] = subscription.messages
    assert message.payload == REMINDER
    assert message.ttl == 900
    assert message.urgency == "normal"
    assert message.vapid_key == vapid_key.public_key_b64url
    assert message.claims["sub"] == SUBJECT
    assert message.claims["aud"] == push_service.origin


async def test_urgency_is_passed_on(push_service: PushService, vapid_key: VapidKey) -> None:
    subscription = push_service.new_subscription()

    await send_push(
        subscription.info, REMINDER, vapid_key, subject=SUBJECT, ttl=0, timeout=5.0,
        allowed=(push_service.origin,), urgency="high",
    )  # fmt: skip

    [message] = subscription.messages
    assert (message.urgency, message.ttl) == ("high", 0)


async def test_every_send_gets_fresh_vapid_claims(
    push_service: PushService, vapid_key: VapidKey
) -> None:
    first = push_service.new_subscription()
    second = PushService(expected_vapid_key=vapid_key.public_key_b64url)
    with second:
        other = second.new_subscription()

        outcomes = [
            await send(first.info, vapid_key),
            await send(other.info, vapid_key),
            await send(first.info, vapid_key),
        ]

        assert [outcome.status for outcome in outcomes] == [201, 201, 201]
        assert push_service.rejections == [] and second.rejections == []
        # Each token names its own push service: no audience leaked from the previous send.
        assert other.messages[0].claims["aud"] == second.origin
        assert {m.claims["aud"] for m in first.messages} == {push_service.origin}


async def test_a_key_other_than_the_subscribed_one_is_refused(
    push_service: PushService, tmp_path: Path
) -> None:
    subscription = push_service.new_subscription()
    stranger = load_or_create_vapid_key(tmp_path / "other.pem")

    outcome = await send(subscription.info, stranger)

    assert outcome.status == 403
    assert not outcome.gone and not outcome.retry and not outcome.delivered
    assert "FIELDCRM_PUSH_SUBJECT" in outcome.detail
    assert [r.status for r in push_service.rejections] == [403]
    assert subscription.messages == []


@pytest.mark.parametrize("status", [404, 410])
async def test_a_subscription_the_service_no_longer_knows_is_gone(
    push_service: PushService, vapid_key: VapidKey, status: int
) -> None:
    subscription = push_service.new_subscription()
    subscription.respond_with(status)

    outcome = await send(subscription.info, vapid_key)

    assert (outcome.status, outcome.gone, outcome.retry) == (status, True, False)


async def test_server_errors_are_retried(push_service: PushService, vapid_key: VapidKey) -> None:
    subscription = push_service.new_subscription()
    subscription.respond_with(500, times=1)

    failed = await send(subscription.info, vapid_key)
    retried = await send(subscription.info, vapid_key)

    assert (failed.status, failed.gone, failed.retry) == (500, False, True)
    assert retried.delivered
    assert subscription.attempts == 2 and subscription.deliveries == 1


async def test_too_many_requests_is_retried_after_what_the_service_asks(
    push_service: PushService, vapid_key: VapidKey
) -> None:
    subscription = push_service.new_subscription()
    subscription.respond_with(429, headers={"Retry-After": "120"})

    outcome = await send(subscription.info, vapid_key)

    assert (outcome.status, outcome.retry, outcome.retry_after_s) == (429, True, 120.0)


async def test_redirects_are_not_followed(push_service: PushService, vapid_key: VapidKey) -> None:
    subscription = push_service.new_subscription()
    elsewhere = push_service.new_subscription()
    subscription.respond_with(307, headers={"Location": elsewhere.endpoint})

    outcome = await send(subscription.info, vapid_key)

    assert (outcome.status, outcome.gone, outcome.retry) == (307, False, False)
    assert "redirect" in outcome.detail
    assert elsewhere.attempts == 0


async def test_a_closed_port_is_a_network_error_to_retry(vapid_key: VapidKey) -> None:
    with PushService() as service:
        subscription = service.new_subscription()
    # The service has stopped: its port now refuses connections.

    outcome = await send(subscription.info, vapid_key)

    assert (outcome.status, outcome.gone, outcome.retry) == (None, False, True)
    assert "reach" in outcome.detail


async def test_a_slow_service_is_given_up_on_after_the_timeout(
    push_service: PushService, vapid_key: VapidKey
) -> None:
    subscription = push_service.new_subscription()
    subscription.respond_with(201, delay_s=10)

    started = time.monotonic()
    outcome = await send(subscription.info, vapid_key, within_s=0.3)
    elapsed = time.monotonic() - started

    assert (outcome.status, outcome.retry) == (None, True)
    assert "in time" in outcome.detail
    assert elapsed < 2.0


async def test_a_payload_too_big_for_web_push_is_not_sent(
    push_service: PushService, vapid_key: VapidKey
) -> None:
    subscription = push_service.new_subscription()
    payload = {**REMINDER, "title": "x" * MAX_PAYLOAD_BYTES}

    outcome = await send_push(
        subscription.info, payload, vapid_key, subject=SUBJECT, ttl=60, timeout=5.0,
        allowed=(push_service.origin,),
    )  # fmt: skip

    assert (outcome.status, outcome.gone, outcome.retry) == (None, False, False)
    assert subscription.attempts == 0


async def test_the_largest_payload_web_push_carries_arrives(
    push_service: PushService, vapid_key: VapidKey
) -> None:
    subscription = push_service.new_subscription()
    overhead = len('{"title":""}')
    payload = {"title": "x" * (MAX_PAYLOAD_BYTES - overhead)}

    outcome = await send_push(
        subscription.info, payload, vapid_key, subject=SUBJECT, ttl=60, timeout=5.0,
        allowed=(push_service.origin,),
    )  # fmt: skip

    assert outcome.delivered, outcome.detail
    assert subscription.messages[0].payload == payload


async def test_a_subscription_with_broken_keys_is_gone(vapid_key: VapidKey) -> None:
    subscription = {
        "endpoint": "http://127.0.0.1:9/push/x",
        "keys": {"p256dh": "AAAA", "auth": "AAAA"},
    }

    outcome = await send(subscription, vapid_key)

    assert (outcome.status, outcome.gone, outcome.retry) == (None, True, False)


async def test_a_send_in_the_background_can_be_awaited_at_the_service(
    push_service: PushService, vapid_key: VapidKey
) -> None:
    subscription = push_service.new_subscription()

    sending = asyncio.create_task(send(subscription.info, vapid_key))
    await push_service.wait_for_async(lambda: subscription.messages)

    assert (await sending).delivered
    with pytest.raises(AssertionError, match="within"):
        push_service.wait_for(lambda: len(subscription.messages) > 1, timeout=0.05)


async def test_fifty_sends_in_a_row(push_service: PushService, vapid_key: VapidKey) -> None:
    subscription = push_service.new_subscription()

    started = time.perf_counter()
    for _ in range(50):
        outcome = await send(subscription.info, vapid_key)
        assert outcome.delivered
    elapsed = time.perf_counter() - started

    print(f"\n50 sends to the local push service in {elapsed:.2f} s: {50 / elapsed:.0f} sends/s")
    assert subscription.deliveries == 50
    assert elapsed < 30  # a sanity bound only; bench/ is where speed is measured


def test_backoff_doubles_from_five_seconds_up_to_an_hour() -> None:
    delays = [backoff_s(attempt) for attempt in range(1, 13)]

    assert delays[:5] == [5.0, 10.0, 20.0, 40.0, 80.0]
    assert max(delays) == delays[-1] == 3600.0
    assert backoff_s(10_000) == 3600.0


def test_backoff_jitter_is_deterministic_with_a_given_random_source() -> None:
    assert backoff_s(3, jitter=0.5, rand=lambda: 1.0) == 10.0
    assert backoff_s(3, jitter=0.5, rand=lambda: 0.0) == 20.0


@pytest.mark.parametrize("attempt", [0, -1])
def test_backoff_counts_attempts_from_one(attempt: int) -> None:
    with pytest.raises(ValueError):
        backoff_s(attempt)


# -- where a send connects: the address checked, and no other ------------------------------

LISTED = "push.fieldcrm.example"  # a push service allowed by name: the strict rules


class Answers:
    """A resolver that gives `answers[n]` to its n-th lookup (the last one after that)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = answers
        self.lookups: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        return self.answers[min(len(self.lookups), len(self.answers)) - 1]


def listed_subscription(service: PushService) -> dict[str, Any]:
    info = service.new_subscription().info
    return {**info, "endpoint": f"https://{LISTED}/push/x"}


@pytest.mark.parametrize("answer", NOT_PUBLIC)
async def test_a_host_name_that_resolves_privately_is_not_sent_to(
    push_service: PushService, vapid_key: VapidKey, connections: Connections, answer: str
) -> None:
    resolver = Answers([answer])

    outcome = await send(
        listed_subscription(push_service), vapid_key, allowed=(LISTED,), resolver=resolver
    )

    assert (outcome.status, outcome.gone, outcome.retry) == (None, False, False)
    assert "not a public address" in outcome.detail
    assert resolver.lookups == [(LISTED, 443)]
    assert connections.attempts == []


async def test_one_private_answer_among_public_ones_is_enough_to_refuse(
    push_service: PushService, vapid_key: VapidKey, connections: Connections
) -> None:
    resolver = Answers(["93.184.216.34", "10.1.2.3"])

    outcome = await send(
        listed_subscription(push_service), vapid_key, allowed=(LISTED,), resolver=resolver
    )

    assert not outcome.retry and "10.1.2.3" in outcome.detail
    assert connections.attempts == []


async def test_a_send_connects_to_the_public_address_it_checked_not_a_later_answer(
    push_service: PushService, vapid_key: VapidKey, connections: Connections
) -> None:
    """DNS rebinding: the first lookup says public, every later one says loopback, where a
    push service listens. The send goes to the checked address (which the test refuses, as
    nothing may leave this machine) and never asks again."""
    resolver = Answers(["93.184.216.34"], ["127.0.0.1"])

    outcome = await send(
        listed_subscription(push_service), vapid_key, allowed=(LISTED,), resolver=resolver
    )

    assert connections.attempts == [("93.184.216.34", 443)]
    assert resolver.lookups == [(LISTED, 443)]
    assert (outcome.status, outcome.retry) == (None, True)
    assert push_service.host_headers == []


async def test_a_whole_origin_by_name_is_pinned_too(
    vapid_key: VapidKey, connections: Connections
) -> None:
    """A push service of one's own, by name: private addresses are allowed, and the send goes
    to the one checked, with the name in Host, even if the name points elsewhere a moment
    later (another service listens there, on the same port)."""
    name = "push.fieldcrm.test"
    with PushService(expected_vapid_key=vapid_key.public_key_b64url, name=name) as service:
        with PushService(host="127.0.0.2", port=service.port, name=name) as elsewhere:
            subscription = service.new_subscription()
            resolver = Answers(["127.0.0.1"], ["127.0.0.2"])

            outcome = await send(
                subscription.info, vapid_key, allowed=(service.origin,), resolver=resolver
            )

            assert outcome.delivered, outcome.detail
            assert resolver.lookups == [(name, service.port)]
            assert connections.attempts == [("127.0.0.1", service.port)]
            assert service.host_headers == [f"{name}:{service.port}"]
            assert subscription.messages[0].claims["aud"] == service.origin
            assert elsewhere.host_headers == []


async def test_the_next_checked_address_is_tried_when_one_cannot_be_reached(
    vapid_key: VapidKey, connections: Connections
) -> None:
    name = "push.fieldcrm.test"
    with PushService(name=name) as service:
        subscription = service.new_subscription()
        resolver = Answers(["127.0.0.3", "127.0.0.1"])  # nothing listens on 127.0.0.3

        outcome = await send(
            subscription.info, vapid_key, allowed=(service.origin,), resolver=resolver
        )

        assert outcome.delivered, outcome.detail
        assert connections.attempts == [("127.0.0.3", service.port), ("127.0.0.1", service.port)]
        assert subscription.deliveries == 1


@pytest.fixture
def authority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestAuthority:
    """A CA of the test's own, which the sender trusts instead of the public ones."""
    ca = TestAuthority.create(tmp_path)
    monkeypatch.setattr(sender, "TLS_VERIFY", str(ca.ca_path))
    return ca


async def test_https_to_the_pinned_address_checks_the_certificate_for_the_name(
    vapid_key: VapidKey, authority: TestAuthority, tmp_path: Path, connections: Connections
) -> None:
    name = "push.fieldcrm.test"
    tls = authority.server_context(name, tmp_path)
    with PushService(name=name, tls=tls) as service:
        subscription = service.new_subscription()

        outcome = await send(
            subscription.info, vapid_key, allowed=(service.origin,),
            resolver=Answers(["127.0.0.1"]),
        )  # fmt: skip

        assert outcome.delivered, outcome.detail
        assert service.origin == f"https://{name}:{service.port}"
        assert connections.attempts == [("127.0.0.1", service.port)]
        assert service.server_names == [name]  # SNI names the host, not the address
        assert service.host_headers == [f"{name}:{service.port}"]


async def test_a_certificate_for_another_name_is_refused(
    vapid_key: VapidKey, authority: TestAuthority, tmp_path: Path
) -> None:
    name = "push.fieldcrm.test"
    tls = authority.server_context("other.fieldcrm.test", tmp_path)
    with PushService(name=name, tls=tls) as service:
        subscription = service.new_subscription()

        outcome = await send(
            subscription.info, vapid_key, allowed=(service.origin,),
            resolver=Answers(["127.0.0.1"]),
        )  # fmt: skip

        assert not outcome.delivered and outcome.retry
        assert subscription.attempts == 0


def test_the_transport_refuses_a_request_it_was_not_pinned_for(
    push_service: PushService,
) -> None:
    """The pinned transport only carries the request whose URL reads as the checked target."""
    session = requests.Session()
    adapter = PinnedAdapter()
    session.mount("http://", adapter)
    endpoint = push_service.new_subscription().endpoint
    target = parse_endpoint(endpoint, (push_service.origin,))

    with pytest.raises(requests.exceptions.InvalidURL, match="checked address"):
        session.post(endpoint, data=b"x", timeout=5)
    with adapter.pinned(target, ipaddress.ip_address("127.0.0.1")):
        with pytest.raises(requests.exceptions.InvalidURL, match="not the push endpoint"):
            session.post(f"http://127.0.0.2:{push_service.port}/push/x", data=b"x", timeout=5)
        with pytest.raises(requests.exceptions.InvalidURL, match="not the push endpoint"):
            session.post(f"http://evil\\@127.0.0.1:{push_service.port}/x", data=b"x", timeout=5)
    assert push_service.host_headers == []


async def test_sends_run_on_threads_of_their_own(
    push_service: PushService, vapid_key: VapidKey
) -> None:
    """A default executor that is busy (password checks, ...) does not hold sends up, and
    sends do not take its threads."""
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
    release = threading.Event()
    busy = loop.run_in_executor(None, release.wait, 10)
    subscription = push_service.new_subscription()
    try:
        outcome = await asyncio.wait_for(send(subscription.info, vapid_key), timeout=5)
    finally:
        release.set()
        await busy

    assert outcome.delivered, outcome.detail
