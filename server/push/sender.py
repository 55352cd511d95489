"""Send one Web Push message (RFC 8030), encrypted per RFC 8291 and signed per RFC 8292.

pywebpush does the encryption and signing; this module decides what an answer means for the
dispatcher: delivered, gone for good (delete the subscription), or worth retrying later.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.cookiejar
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import requests
from pywebpush import WebPushException, webpush

from server.push.endpoints import PushSubscriptionRefused, check_subscription_keys
from server.push.vapid import VapidKey

Urgency = Literal["very-low", "low", "normal", "high"]

# RFC 8291: a push service must accept 4096 bytes of body; aes128gcm takes 86 for its header,
# 16 for the tag and 1 for the padding delimiter.
MAX_PAYLOAD_BYTES = 4096 - 86 - 16 - 1

# RFC 8292 allows at most 24 hours; half that leaves room for clock skew at the push service.
VAPID_TOKEN_LIFETIME_S = 12 * 60 * 60

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
    urgency: Urgency = "normal",
) -> PushOutcome:
    """Encrypt `payload` (as compact UTF-8 JSON) for `subscription` and post it to its endpoint.

    `subject` is the VAPID contact (a mailto: or https: URI) push services use to reach the
    operator; `ttl` is how many seconds the service keeps the message for an offline device;
    `timeout` bounds the connection and each read. Never raises for an HTTP status or a
    network failure; raises only for programming errors (a bad `subject`, a negative `ttl`).
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
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    size = len(body.encode("utf-8"))
    if size > MAX_PAYLOAD_BYTES:
        return PushOutcome(
            None,
            gone=False,
            retry=False,
            detail=f"payload is {size} bytes; a push message carries at most {MAX_PAYLOAD_BYTES}",
        )
    # pywebpush blocks (requests); a worker thread keeps the event loop serving meanwhile.
    return await asyncio.to_thread(
        _send_blocking, subscription, endpoint, body, key, subject, ttl, timeout, urgency
    )


_sessions = threading.local()


def _session() -> requests.Session:
    """This worker thread's HTTP session: kept, so that sends to one push service reuse their
    connections (a session each time opened a connection per message)."""
    session: requests.Session | None = getattr(_sessions, "session", None)
    if session is None:
        session = requests.Session()
        # The endpoint's host was checked against the allowed list; a redirect would lead
        # the request somewhere that was not, so none are followed.
        session.max_redirects = 0
        # Nothing a push service sets is sent back with another user's messages.
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        _sessions.session = session
    return session


def _send_blocking(
    subscription: Mapping[str, Any],
    endpoint: str,
    body: str,
    key: VapidKey,
    subject: str,
    ttl: int,
    timeout: float,
    urgency: Urgency,
) -> PushOutcome:
    # A fresh dict every time: pywebpush writes into the claims it is given, and a dict shared
    # between sends would carry one endpoint's audience or an old expiry into the next.
    claims: dict[str, str | int] = {
        "sub": subject,
        "aud": _origin(endpoint),
        "exp": int(time.time()) + VAPID_TOKEN_LIFETIME_S,
    }
    session = _session()
    try:
        response = webpush(
            subscription,
            data=body,
            vapid_private_key=key.signer,
            vapid_claims=claims,
            ttl=ttl,
            timeout=timeout,
            headers={"Urgency": urgency},
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
        )
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
    ) as exc:
        return PushOutcome(None, gone=False, retry=False, detail=f"bad endpoint: {exc}")
    except requests.RequestException as exc:
        return PushOutcome(None, gone=False, retry=True, detail=_network_detail(exc))
    # webpush returns a str only when asked for a curl command line.
    return _outcome_for(cast(requests.Response, response))


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


def _origin(endpoint: str) -> str:
    """The RFC 6454 origin VAPID's `aud` must name: scheme, host and non-default port."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    port = "" if parts.port in (None, default_port) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"


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
