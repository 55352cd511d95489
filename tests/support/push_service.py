"""A local Web Push service that behaves like the real ones, for tests.

It is the third party our server talks to, not a mock of our code: it checks the VAPID token
(RFC 8292) and decrypts the message (RFC 8291) with the "browser's" private key, so a test that
passes here sent something FCM, Mozilla or Apple would also have accepted.

    with PushService() as service:
        sub = service.new_subscription()
        ... send to sub.info ...
        service.wait_for(lambda: sub.messages)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import http.server
import json
import os
import secrets
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAX_BODY_BYTES = 4096  # RFC 8030 section 7.2: larger messages may be refused with 413
MAX_TOKEN_LIFETIME_S = 24 * 60 * 60  # RFC 8292 section 2
URGENCIES = ("very-low", "low", "normal", "high")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    data = text.encode("ascii")
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


def _whole_number(text: str | None) -> int | None:
    if text is None or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


@dataclass(frozen=True)
class ReceivedMessage:
    """A message the service accepted, decrypted as the browser would see it."""

    payload: dict[str, Any]
    ttl: int
    urgency: str | None
    topic: str | None
    vapid_key: str
    claims: dict[str, Any]


@dataclass(frozen=True)
class Rejection:
    subscription_id: str
    status: int
    reason: str


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class _Script:
    status: int
    times: int | None
    delay_s: float
    headers: dict[str, str]


class Subscription:
    """One browser's subscription: its keys, what it received and how the service answers it."""

    def __init__(self, service: PushService, subscription_id: str) -> None:
        self.id = subscription_id
        self.endpoint = f"{service.origin}/push/{subscription_id}"
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = os.urandom(16)
        public_point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        # Exactly the shape of PushSubscription.toJSON() in a browser.
        self.info: dict[str, Any] = {
            "endpoint": self.endpoint,
            "keys": {"p256dh": b64url(public_point), "auth": b64url(self.auth_secret)},
        }
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._attempts = 0
        self._script: _Script | None = None

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def deliveries(self) -> int:
        """Messages accepted (answered 2xx)."""
        with self._lock:
            return len(self._messages)

    @property
    def attempts(self) -> int:
        """Requests that passed VAPID and decryption, whatever they were answered."""
        with self._lock:
            return self._attempts

    def respond_with(
        self,
        status: int,
        *,
        times: int | None = None,
        delay_s: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer valid messages with `status` (`times` times, then 201 again; None: for good),
        after waiting `delay_s` seconds, with `headers` (Retry-After, Location, ...)."""
        with self._lock:
            self._script = _Script(status, times, delay_s, dict(headers or {}))

    def _next_answer(self) -> _Script:
        with self._lock:
            self._attempts += 1
            script = self._script
            if script is None:
                return _Script(201, None, 0.0, {})
            if script.times is not None:
                script.times -= 1
                if script.times <= 0:
                    self._script = None
            return script

    def _record(self, message: ReceivedMessage) -> None:
        with self._lock:
            self._messages.append(message)


class PushService:
    """An HTTP push service on 127.0.0.1 and a free port, run in a background thread.

    `host` and `port` choose another loopback address or a given port; `name` is the host
    name the service is reached by (its origin, which VAPID tokens must name), by default its
    address; `tls` serves https with that server context (the names clients asked for in
    SNI are noted in `server_names`).
    """

    def __init__(
        self,
        *,
        expected_vapid_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.expected_vapid_key = expected_vapid_key
        self._lock = threading.Lock()
        self._subscriptions: dict[str, Subscription] = {}
        self._rejections: list[Rejection] = []
        self._errors: list[str] = []
        self._host_headers: list[str | None] = []
        self._server_names: list[str | None] = []
        self._stopping = threading.Event()
        self._server = _Server((host, port), _Handler)
        self._server.push_service = self
        self.port: int = self._server.server_address[1]
        if tls is not None:
            tls.sni_callback = self._note_server_name
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.origin = f"{scheme}://{name or host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"push-service-{self.port}",
            daemon=True,
        )

    def __enter__(self) -> PushService:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop answering; the port is closed afterwards (sends to it are refused)."""
        self._stopping.set()  # wakes handlers sleeping for `delay_s`
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def new_subscription(self) -> Subscription:
        subscription = Subscription(self, secrets.token_urlsafe(16))
        with self._lock:
            self._subscriptions[subscription.id] = subscription
        return subscription

    @property
    def host_headers(self) -> list[str | None]:
        """The Host header of every request, in order."""
        with self._lock:
            return list(self._host_headers)

    @property
    def server_names(self) -> list[str | None]:
        """The TLS server name (SNI) of every connection, in order (with `tls`)."""
        with self._lock:
            return list(self._server_names)

    def _note_server_name(self, _: Any, name: str | None, __: Any) -> None:
        with self._lock:
            self._server_names.append(name)

    @property
    def rejections(self) -> list[Rejection]:
        with self._lock:
            return list(self._rejections)

    @property
    def errors(self) -> list[str]:
        """Tracebacks of bugs in this service itself; a test should find it empty."""
        with self._lock:
            return list(self._errors)

    def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        """Poll `predicate` until it is true; fail the test if it is not within `timeout`.

        This blocks the thread: in an async test use `wait_for_async`, or the event loop (and
        the dispatcher running on it) would stand still while it waits.
        """
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"push service: condition not met within {timeout} s")
            time.sleep(0.01)

    async def wait_for_async(
        self,
        predicate: Callable[[], object],
        timeout: float = 5.0,  # noqa: ASYNC109 - the same name as in wait_for
    ) -> None:
        """`wait_for` for async tests: the event loop keeps running between polls."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"push service: condition not met within {timeout} s")
            await asyncio.sleep(0.01)

    def _subscription(self, subscription_id: str) -> Subscription | None:
        with self._lock:
            return self._subscriptions.get(subscription_id)

    def _reject(self, subscription_id: str, status: int, reason: str) -> None:
        with self._lock:
            self._rejections.append(Rejection(subscription_id, status, reason))

    def _error(self, text: str) -> None:
        with self._lock:
            self._errors.append(text)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    push_service: PushService

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        # A client that gave up (timed out) before the answer is not a bug of the service.
        if isinstance(error, ConnectionError):
            return
        self.push_service._error(traceback.format_exc())


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_POST(self) -> None:
        service = self.server.push_service
        with service._lock:
            service._host_headers.append(self.headers.get("Host"))
        subscription_id = self.path.removeprefix("/push/")
        try:
            body = self._read_body()
            subscription = service._subscription(subscription_id)
            if not self.path.startswith("/push/") or subscription is None:
                raise Refused(404, "no such subscription")
            message = self._accept(subscription, body)
        except Refused as refused:
            service._reject(subscription_id, refused.status, refused.reason)
            self._answer(refused.status, refused.reason)
            return
        answer = subscription._next_answer()
        if answer.delay_s:
            service._stopping.wait(answer.delay_s)
        if 200 <= answer.status < 300:
            subscription._record(message)
            location = f"/message/{secrets.token_urlsafe(8)}"
            self._answer(answer.status, "", {"Location": location, **answer.headers})
        else:
            self._answer(answer.status, f"scripted {answer.status}", answer.headers)

    def _read_body(self) -> bytes:
        length = _whole_number(self.headers.get("Content-Length"))
        if length is None:
            self.close_connection = True
            raise Refused(411, "Content-Length is required")
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would be taken for the next request
            raise Refused(413, f"body is {length} bytes, over {MAX_BODY_BYTES}")
        return self.rfile.read(length)

    def _accept(self, subscription: Subscription, body: bytes) -> ReceivedMessage:
        vapid_key, claims = self._verify_vapid(subscription)
        ttl = _whole_number(self.headers.get("TTL"))
        if ttl is None:
            raise Refused(400, "missing or invalid TTL header")
        urgency = self.headers.get("Urgency")
        if urgency is not None and urgency not in URGENCIES:
            raise Refused(400, f"invalid Urgency {urgency!r}")
        if self.headers.get("Content-Encoding") != "aes128gcm":
            raise Refused(400, "Content-Encoding must be aes128gcm")
        try:
            plaintext = http_ece.decrypt(
                body,
                private_key=subscription.private_key,
                auth_secret=subscription.auth_secret,
                version="aes128gcm",
            )
        except Exception as exc:  # any failure to decrypt, whatever the library raised
            raise Refused(400, f"cannot decrypt the body: {exc!r}") from exc
        try:
            payload = json.loads(plaintext.decode("utf-8"))
        except ValueError as exc:
            raise Refused(400, "decrypted payload is not UTF-8 JSON") from exc
        if not isinstance(payload, dict):
            raise Refused(400, "decrypted payload is not a JSON object")
        return ReceivedMessage(
            payload=payload,
            ttl=ttl,
            urgency=urgency,
            topic=self.headers.get("Topic"),
            vapid_key=vapid_key,
            claims=claims,
        )

    def _verify_vapid(self, subscription: Subscription) -> tuple[str, dict[str, Any]]:
        """RFC 8292: `Authorization: vapid t=<JWT>, k=<public key>`; returns (k, claims)."""
        header = self.headers.get("Authorization", "")
        scheme, _, params_text = header.partition(" ")
        if scheme.lower() != "vapid":
            raise Refused(401, "Authorization is not a vapid token")
        params: dict[str, str] = {}
        for param in params_text.split(","):
            name, _, value = param.strip().partition("=")
            params[name.strip()] = value.strip()
        token, key_text = params.get("t", ""), params.get("k", "")
        try:
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), unb64url(key_text)
            )
            header_b64, claims_b64, signature_b64 = token.split(".")
            jwt_header = json.loads(unb64url(header_b64))
            claims = json.loads(unb64url(claims_b64))
            signature = unb64url(signature_b64)
        except (ValueError, binascii.Error) as exc:
            raise Refused(401, f"malformed vapid token or key: {exc}") from exc
        if not isinstance(jwt_header, dict) or jwt_header.get("alg") != "ES256":
            raise Refused(401, "JWT alg must be ES256")
        if len(signature) != 64:
            raise Refused(401, "ES256 signature must be 64 bytes (r || s)")
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        try:
            public_key.verify(
                encode_dss_signature(r, s),
                f"{header_b64}.{claims_b64}".encode("ascii"),
                ec.ECDSA(hashes.SHA256()),
            )
        except InvalidSignature as exc:
            raise Refused(401, "vapid signature does not verify with k") from exc
        if not isinstance(claims, dict):
            raise Refused(401, "JWT claims are not an object")
        origin = self.server.push_service.origin
        if claims.get("aud") != origin:
            raise Refused(401, f"aud {claims.get('aud')!r} is not {origin!r}")
        exp = claims.get("exp")
        now = time.time()
        if not isinstance(exp, int) or exp <= now:
            raise Refused(401, "exp is missing or in the past")
        if exp > now + MAX_TOKEN_LIFETIME_S:
            raise Refused(401, "exp is more than 24 hours ahead")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
            raise Refused(401, "sub must be a mailto: or https: URI")
        expected = self.server.push_service.expected_vapid_key
        if expected is not None and unb64url(key_text) != unb64url(expected):
            # RFC 8292 section 4.2: a key other than the one the browser subscribed with.
            raise Refused(403, "vapid key is not the one this subscription was made with")
        return key_text, claims

    def _answer(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
