"""Which push endpoints the server is willing to send to.

A subscription's endpoint is a URL the browser hands us; sending to it is a server-side request
to an address a client chose. Only the push services' own hosts are allowed (SPEC section 1,
FIELDCRM_PUSH_ALLOWED_HOSTS), so the server cannot be aimed at its own network. Everything here
is string checks: no DNS lookups, which could be slow and would answer differently later anyway.
"""

from __future__ import annotations

import binascii
import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from server.push.vapid import b64url_decode

DEFAULT_ALLOWED_PUSH_HOSTS: tuple[str, ...] = (
    "fcm.googleapis.com",  # Chrome, Android browsers, Opera, Samsung Internet
    "updates.push.services.mozilla.com",  # Firefox
    "web.push.apple.com",  # Safari on macOS and iOS
    "*.push.apple.com",
    "*.notify.windows.com",  # Edge (Windows Push Notification Services)
)

MAX_ENDPOINT_LENGTH = 2048

_HOST_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"{_HOST_LABEL}(\.{_HOST_LABEL})*")
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f]")


class PushSubscriptionRefused(ValueError):
    """A subscription the server will not store or send to; `detail` is a sentence for a person."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PushEndpointRefused(PushSubscriptionRefused):
    """The endpoint URL is not one of the allowed push services."""


def parse_allowed_hosts(value: str | None) -> tuple[str, ...]:
    """Read FIELDCRM_PUSH_ALLOWED_HOSTS: comma-separated host names, `*.domain` for subdomains.

    Unset or blank means the public push services. Raises ValueError naming the bad entry, so a
    typo stops the server at start rather than refusing every browser later.
    """
    if value is None or not value.strip():
        return DEFAULT_ALLOWED_PUSH_HOSTS
    hosts: list[str] = []
    for raw in value.split(","):
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        if entry.startswith("[") and entry.endswith("]"):
            entry = entry[1:-1]
        if _is_ip_address(entry):
            entry = str(ipaddress.ip_address(entry))  # one spelling, so comparison is exact
        elif not _is_valid_entry(entry):
            raise ValueError(
                f"FIELDCRM_PUSH_ALLOWED_HOSTS: {raw.strip()!r} is not a host name; list bare "
                "hosts separated by commas, like fcm.googleapis.com,*.push.apple.com "
                "(no scheme, port or path)"
            )
        if entry not in hosts:
            hosts.append(entry)
    if not hosts:
        raise ValueError("FIELDCRM_PUSH_ALLOWED_HOSTS lists no hosts; unset it to use the defaults")
    return tuple(hosts)


def _is_valid_entry(entry: str) -> bool:
    if entry.startswith("*."):
        # A wildcard must name a domain below a top-level one: "*.com" would allow far too much.
        base = entry[2:]
        return "." in base and _HOST_NAME.fullmatch(base) is not None
    return _HOST_NAME.fullmatch(entry) is not None


def check_endpoint(endpoint: str, allowed: tuple[str, ...]) -> None:
    """Raise PushEndpointRefused unless `endpoint` is an https URL on an allowed host.

    Plain http is accepted only for a loopback host that is listed by name, which is how a
    local push service runs in tests and development.
    """
    if not isinstance(endpoint, str) or not endpoint:
        raise PushEndpointRefused("The push endpoint is missing; send the subscription's URL.")
    if len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise PushEndpointRefused(
            f"The push endpoint is {len(endpoint)} characters long; push services use URLs "
            f"under {MAX_ENDPOINT_LENGTH}, so this is not a real subscription."
        )
    if _UNSAFE_CHARACTERS.search(endpoint) or not endpoint.isascii():
        raise PushEndpointRefused(
            "The push endpoint contains spaces, control or non-ASCII characters; send the URL "
            "exactly as PushSubscription.toJSON() gives it."
        )
    try:
        parts = urlsplit(endpoint)
        hostname = parts.hostname
        _ = parts.port  # reading it is what validates the port number
    except ValueError as exc:
        raise PushEndpointRefused(f"The push endpoint is not a valid URL ({exc}).") from exc
    if parts.scheme not in ("https", "http") or not hostname:
        raise PushEndpointRefused(
            "The push endpoint is not an https URL; send the subscription's endpoint as "
            "PushSubscription.toJSON() gives it."
        )
    if "@" in parts.netloc:
        raise PushEndpointRefused(
            "The push endpoint contains a user name or password, which push services never "
            "use; this is not a real subscription."
        )
    host = hostname.rstrip(".")
    if _is_ip_address(host):
        host = str(ipaddress.ip_address(host))
    if not _host_is_allowed(host, allowed):
        raise PushEndpointRefused(
            f"The push endpoint's host {host!r} is not a known push service. The server only "
            f"sends to: {', '.join(allowed)} (set FIELDCRM_PUSH_ALLOWED_HOSTS to change this)."
        )
    # A loopback host that got past the list was named in it: wildcards match neither addresses
    # nor "localhost" itself.
    if parts.scheme == "http" and not _is_loopback(host):
        raise PushEndpointRefused(
            "The push endpoint must use https; plain http is only accepted for a local push "
            "service on a loopback address listed in FIELDCRM_PUSH_ALLOWED_HOSTS."
        )


def check_subscription(subscription: Mapping[str, object], allowed: tuple[str, ...]) -> None:
    """Check a browser's PushSubscription.toJSON() before storing it: endpoint and keys."""
    endpoint = subscription.get("endpoint")
    check_endpoint(endpoint if isinstance(endpoint, str) else "", allowed)
    check_subscription_keys(subscription)


def check_subscription_keys(subscription: Mapping[str, object]) -> None:
    """Raise PushSubscriptionRefused unless `keys` holds a P-256 point and a 16-byte secret.

    Without usable keys a message cannot be encrypted for the browser (RFC 8291).
    """
    keys = subscription.get("keys")
    if not isinstance(keys, Mapping):
        raise PushSubscriptionRefused(
            "The subscription has no keys; send PushSubscription.toJSON(), which includes "
            "keys.p256dh and keys.auth."
        )
    p256dh = _decode_key(keys, "p256dh")
    auth = _decode_key(keys, "auth")
    try:
        if len(p256dh) != 65:
            raise ValueError("wrong length")
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError as exc:
        raise PushSubscriptionRefused(
            "keys.p256dh is not an uncompressed P-256 public key (65 bytes, base64url)."
        ) from exc
    if len(auth) != 16:
        raise PushSubscriptionRefused("keys.auth must be a 16-byte secret, base64url-encoded.")


def _decode_key(keys: Mapping[str, object], name: str) -> bytes:
    value = keys.get(name)
    if not isinstance(value, str) or not value:
        raise PushSubscriptionRefused(f"The subscription is missing keys.{name}.")
    try:
        return b64url_decode(value)
    except (binascii.Error, ValueError) as exc:
        raise PushSubscriptionRefused(f"keys.{name} is not base64url text.") from exc


def _host_is_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower()
    is_address = _is_ip_address(host)
    for entry in (entry.lower() for entry in allowed):
        if entry.startswith("*."):
            # Wildcards are for domains; "*.0.0.1" must not let in 127.0.0.1.
            if not is_address and host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


def _is_loopback(host: str) -> bool:
    if host == "localhost":  # RFC 6761: always the loopback interface
        return True
    return _is_ip_address(host) and ipaddress.ip_address(host).is_loopback


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
