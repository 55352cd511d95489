"""Send one Web Push message (RFC 8030), encrypted per RFC 8291 and signed per RFC 8292.

pywebpush does the encryption and signing, and posts with requests; this module reads the
endpoint (`endpoints.parse_endpoint`), looks its host up once and checks the answer
(`addresses.py`), makes requests connect to that address and no other (`PinnedAdapter`), and
decides what an answer means for the dispatcher: delivered, gone for good (delete the
subscription), or worth retrying later.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.cookiejar
import ipaddress
import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import requests
from pywebpush import WebPushException, webpush
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util import parse_url

from server.push.addresses import (
    AddressRefused,
    IPAddress,
    LookupFailed,
    Resolver,
    addresses_for,
    system_resolver,
)
from server.push.endpoints import (
    DEFAULT_PORTS,
    PushEndpointRefused,
    PushSubscriptionRefused,
    PushTarget,
    check_subscription_keys,
    parse_endpoint,
)
from server.push.vapid import VapidKey

Urgency = Literal["very-low", "low", "normal", "high"]

# RFC 8291: a push service must accept 4096 bytes of body; aes128gcm takes 86 for its header,
# 16 for the tag and 1 for the padding delimiter.
MAX_PAYLOAD_BYTES = 4096 - 86 - 16 - 1

# RFC 8292 allows at most 24 hours; half that leaves room for clock skew at the push service.
VAPID_TOKEN_LIFETIME_S = 12 * 60 * 60

# A host with several addresses: the next is tried when no connection can be made to one.
MAX_ADDRESSES_TRIED = 3

# Sends run on threads of their own, never the event loop's default executor: that one
# verifies passwords (logins) among other things, and sends to a push service that hangs
# would hold its threads until their timeouts. At most this many sends are in flight.
SEND_THREADS = 16
_SENDERS = ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="push-send")

BACKOFF_FIRST_S = 5.0
BACKOFF_MAX_S = 60.0 * 60.0


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What became of one send.

    `status` is the push service's HTTP status, or None when no answer came (network error,
    timeout) or the message was never sent. `gone`: delete the subscription. `retry`: send
    again later (after `backoff_s`, or `retry_after_s` if the service asked for longer).
    Neither and not delivered: a permanent failure for this message; log `detail`.
    """

    status: int | None
    gone: bool
    retry: bool
    detail: str
    retry_after_s: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def send_push(
    subscription: Mapping[str, Any],
    payload: Mapping[str, Any],
    key: VapidKey,
    *,
    subject: str,
    ttl: int,
    # Passed on to requests: asyncio.timeout could not stop the worker thread doing the I/O.
    timeout: float,  # noqa: ASYNC109
    allowed: tuple[str, ...],
    resolver: Resolver = system_resolver,
    urgency: Urgency = "normal",
) -> PushOutcome:
    """Encrypt `payload` (as compact UTF-8 JSON) for `subscription` and post it to its endpoint.

    `subject` is the VAPID contact (a mailto: or https: URI) push services use to reach the
    operator; `ttl` is how many seconds the service keeps the message for an offline device;
    `timeout` bounds the connection and each read. The endpoint is read with `allowed`
    (FIELDCRM_PUSH_ALLOWED_HOSTS, parsed) as `endpoints.parse_endpoint` reads it; its host is
    looked up once with `resolver`, the answer checked (`addresses.addresses_for`), and the
    request goes to that address, with the endpoint's host name in the Host header and TLS.
    Never raises for an HTTP status, a refused endpoint or a network failure; raises only for
    programming errors (a bad `subject`, a negative `ttl`).
    """
    if ttl < 0:
        raise ValueError(f"ttl must be zero or more seconds, not {ttl}")
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, not {timeout}")
    endpoint = subscription.get("endpoint")
    try:
        if not isinstance(endpoint, str) or not endpoint:
            raise PushSubscriptionRefused("it has no endpoint")
        check_subscription_keys(subscription)
    except PushSubscriptionRefused as exc:
        # It can never be delivered to, so it is as good as gone.
        return PushOutcome(None, gone=True, retry=False, detail=f"unusable subscription: {exc}")
    try:
        target = parse_endpoint(endpoint, allowed)
    except PushEndpointRefused as exc:
        return PushOutcome(None, gone=False, retry=False, detail=f"not sent: {exc.detail}")
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    size = len(body.encode("utf-8"))
    if size > MAX_PAYLOAD_BYTES:
        return PushOutcome(
            None,
            gone=False,
            retry=False,
            detail=f"payload is {size} bytes; a push message carries at most {MAX_PAYLOAD_BYTES}",
        )
    message = _Message(subscription, target, body, key, subject, ttl, timeout, urgency)
    # pywebpush blocks (requests), and so does the lookup: a sender thread keeps the event
    # loop serving meanwhile.
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_SENDERS, _send_blocking, message, resolver)


@dataclass(frozen=True, slots=True)
class _Message:
    subscription: Mapping[str, Any]
    target: PushTarget
    body: str
    key: VapidKey
    subject: str
    ttl: int
    timeout: float
    urgency: Urgency


class PinnedAdapter(HTTPAdapter):
    """requests' transport, made to connect to the address that was checked for this send.

    The pool is keyed on that address, while the Host header, the TLS server name (SNI) and
    the certificate check use the endpoint's host name, so nothing resolves the name again
    between the check and the connection. A request whose URL does not read as the pinned
    target, or that comes with no pin, is refused before any connection is made.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pin: tuple[PushTarget, IPAddress] | None = None

    @contextmanager
    def pinned(self, target: PushTarget, address: IPAddress) -> Iterator[None]:
        """Send to `address` for `target` within the block (one thread uses one adapter)."""
        self._pin = (target, address)
        try:
            yield
        finally:
            self._pin = None

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if self._pin is None:
            raise ValueError("no checked address for this request; push sends are pinned")
        target, address = self._pin
        if _reading(request.url or "") != (target.scheme, target.host, target.port):
            raise ValueError("the request's URL is not the push endpoint that was checked")
        _, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if target.scheme == "https" and not target.host_is_address:
            pool_kwargs["server_hostname"] = target.host
            pool_kwargs["assert_hostname"] = target.host
        return {"scheme": target.scheme, "host": str(address), "port": target.port}, pool_kwargs

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        if self._pin is not None:
            request.headers["Host"] = self._pin[0].authority


def _reading(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) as both urllib3 and the standard library read `url`; requests
    uses each in turn, so where they differ the URL reads as nowhere."""
    parsed, split = parse_url(url), urlsplit(url)
    readings = {
        _spelled((parsed.scheme or "").lower(), parsed.host or "", parsed.port),
        _spelled(split.scheme.lower(), split.hostname or "", split.port),
    }
    return readings.pop() if len(readings) == 1 else ("", "", -1)


def _spelled(scheme: str, host: str, port: int | None) -> tuple[str, str, int]:
    host = host.lower().strip("[]")
    if ":" in host:
        host = str(ipaddress.IPv6Address(host))
    return scheme, host, port or DEFAULT_PORTS.get(scheme, -1)


_sessions = threading.local()

# Certificates to trust instead of the bundled ones; tests point it at their own CA.
TLS_VERIFY: bool | str = True


def _session() -> tuple[requests.Session, PinnedAdapter]:
    """This worker thread's HTTP session and its pinned transport: kept, so that sends to one
    push service reuse their connections (a session each time opened a connection per
    message)."""
    session: requests.Session | None = getattr(_sessions, "session", None)
    if session is None:
        session = requests.Session()
        # No proxy from the environment (a proxy would resolve the host itself, past the
        # check), no netrc, no CA bundle from the environment.
        session.trust_env = False
        # The endpoint's host was checked against the allowed list; a redirect would lead
        # the request somewhere that was not, so none are followed.
        session.max_redirects = 0
        # Nothing a push service sets is sent back with another user's messages.
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        pinned = PinnedAdapter()
        session.mount("https://", pinned)
        session.mount("http://", pinned)
        _sessions.session, _sessions.adapter = session, pinned
    session.verify = TLS_VERIFY
    adapter: PinnedAdapter = _sessions.adapter
    return session, adapter


def _send_blocking(message: _Message, resolver: Resolver) -> PushOutcome:
    try:
        addresses = addresses_for(message.target, resolver)
    except AddressRefused as exc:
        return PushOutcome(None, gone=False, retry=False, detail=f"not sent: {exc.detail}")
    except LookupFailed as exc:
        return PushOutcome(None, gone=False, retry=True, detail=str(exc))
    outcome = PushOutcome(None, gone=False, retry=True, detail="no address to send to")
    # Each address was checked; the next is tried only when no connection could be made to
    # one, so a message is never sent twice.
    for address in addresses[:MAX_ADDRESSES_TRIED]:
        outcome, connected = _post(message, address)
        if connected:
            break
    return outcome


def _post(message: _Message, address: IPAddress) -> tuple[PushOutcome, bool]:
    """Send to one address; the outcome, and whether a connection was made."""
    # A fresh dict every time: pywebpush writes into the claims it is given, and a dict shared
    # between sends would carry one endpoint's audience or an old expiry into the next.
    claims: dict[str, str | int] = {
        "sub": message.subject,
        "aud": message.target.origin,
        "exp": int(time.time()) + VAPID_TOKEN_LIFETIME_S,
    }
    session, adapter = _session()
    try:
        with adapter.pinned(message.target, address):
            response = webpush(
                message.subscription,
                data=message.body,
                vapid_private_key=message.key.signer,
                vapid_claims=claims,
                ttl=message.ttl,
                timeout=message.timeout,
                headers={"Urgency": message.urgency},
                requests_session=session,
            )
    except WebPushException as exc:
        if exc.response is None:
            raise
        response = exc.response
    except requests.TooManyRedirects as exc:
        status = exc.response.status_code if exc.response is not None else None
        return PushOutcome(
            status, gone=False, retry=False, detail="push service answered with a redirect"
        ), True
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
    ) as exc:
        return PushOutcome(None, gone=False, retry=False, detail=f"bad endpoint: {exc}"), False
    except requests.RequestException as exc:
        outcome = PushOutcome(None, gone=False, retry=True, detail=_network_detail(exc))
        return outcome, not _never_connected(exc)
    # webpush returns a str only when asked for a curl command line.
    return _outcome_for(cast(requests.Response, response)), True


def _never_connected(exc: requests.RequestException) -> bool:
    """Whether the request failed before a connection was made (so nothing was sent)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _outcome_for(response: requests.Response) -> PushOutcome:
    status = response.status_code
    detail = f"{status} {response.reason}"
    text = response.text.strip()
    if text:
        detail += f": {text[:200]}"
    if 200 <= status < 300:
        return PushOutcome(status, gone=False, retry=False, detail=detail)
    if status in (404, 410):
        return PushOutcome(status, gone=True, retry=False, detail=detail)
    if status in (408, 429) or status >= 500:
        retry_after = _retry_after_s(response.headers.get("Retry-After"))
        return PushOutcome(status, gone=False, retry=True, detail=detail, retry_after_s=retry_after)
    if status in (401, 403):
        detail += (
            " (the push service refused the VAPID token: check that FIELDCRM_PUSH_SUBJECT is a "
            "real mailto: or https: contact, and that the VAPID key file was not replaced after "
            "the browser subscribed)"
        )
    # 400 (malformed), 401/403 (VAPID refused; the subscription may work again once the
    # configuration is fixed, so it is kept), 413 (too large): sending the same message again
    # would fail the same way.
    return PushOutcome(status, gone=False, retry=False, detail=detail)


def _network_detail(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "push service did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        return f"could not reach the push service: {type(exc).__name__}"
    return f"request to the push service failed: {type(exc).__name__}: {exc}"


def _retry_after_s(value: str | None) -> float | None:
    """Seconds from a Retry-After header, which is either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_s(
    attempt: int,
    *,
    jitter: float = 0.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first retry).

    Doubles from 5 s up to a cap of one hour: 5, 10, 20, 40 ... 3600. With `jitter` (0 to 1),
    up to that fraction is taken off at random so that many failed sends do not come back in
    the same instant; pass `rand` to make it deterministic in tests.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, not {attempt}")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter is a fraction between 0 and 1, not {jitter}")
    # The exponent is capped too, so a very large attempt number cannot overflow a float.
    delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0 ** min(attempt - 1, 32))
    return delay * (1.0 - jitter * rand())
