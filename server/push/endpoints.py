"""Which push endpoints the server is willing to send to, read exactly as the sender reads them.

A subscription's endpoint is a URL the browser hands us; sending to it is a server-side request
to an address a client chose. FIELDCRM_PUSH_ALLOWED_HOSTS (SPEC sections 1 and 6) names two
kinds of entry:

- **host names** (the public push services by default; `*.domain` for subdomains): the
  endpoint must be `https://HOST/PATH` on port 443, HOST a DNS name on the list, and at send
  time HOST must resolve to public addresses only (`addresses.py`);
- **whole origins** (`http://10.1.2.3:8080`), for a push service the operator runs: exactly
  that scheme, host and port are allowed, private addresses included.

An endpoint is read once, here, by a grammar strict enough that no two URL parsers can read it
differently (no backslash, user name, `@`, fragment, percent-encoded or non-ASCII host, ...),
and then compared with what the HTTP client that sends (requests, on urllib3) reads from it:
any difference refuses it. The sender then connects to the scheme, host and port read here
(`PushTarget`), never to a URL read again elsewhere. No DNS lookups here.
"""

from __future__ import annotations

import binascii
import functools
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from urllib3.util import parse_url

from server.push.vapid import b64url_decode

DEFAULT_ALLOWED_PUSH_HOSTS: tuple[str, ...] = (
    "fcm.googleapis.com",  # Chrome, Android browsers, Opera, Samsung Internet
    "updates.push.services.mozilla.com",  # Firefox
    "web.push.apple.com",  # Safari on macOS and iOS
    "*.push.apple.com",
    "*.notify.windows.com",  # Edge (Windows Push Notification Services)
)

MAX_ENDPOINT_LENGTH = 2048
DEFAULT_PORTS = {"https": 443, "http": 80}

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*", re.ASCII)
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}", re.ASCII)
# RFC 3986's pchar without "@" (no push service uses it, and it is what userinfo tricks need);
# "%" only as the start of a percent-encoded byte.
_PATH_CHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:/]|%[0-9A-Fa-f]{2})"
_QUERY_CHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:/?]|%[0-9A-Fa-f]{2})"
_HOST = r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+"
_ENDPOINT = re.compile(
    rf"(?P<scheme>[A-Za-z]+)://(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?"
    rf"(?P<target>/{_PATH_CHAR}*(?:\?{_QUERY_CHAR}*)?)",
    re.ASCII,
)
_ORIGIN = re.compile(
    rf"(?P<scheme>[A-Za-z]+)://(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?/?", re.ASCII
)
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_FORM = "send the URL exactly as PushSubscription.toJSON() gives it"


class PushSubscriptionRefused(ValueError):
    """A subscription the server will not store or send to; `detail` is a sentence for a person."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PushEndpointRefused(PushSubscriptionRefused):
    """The endpoint URL is not one of the allowed push services, or not read one way only."""


@dataclass(frozen=True, slots=True)
class PushTarget:
    """Where a push endpoint points, as read by `parse_endpoint`: what the sender connects to.

    `host` is lower case, an IPv6 address without brackets. `public_only`: the endpoint was
    allowed by a host name, so every address its host resolves to must be public; an endpoint
    allowed by a whole origin may point at private addresses.
    """

    endpoint: str
    scheme: str
    host: str
    port: int
    public_only: bool

    @property
    def host_is_address(self) -> bool:
        return _is_ip_address(self.host)

    @property
    def authority(self) -> str:
        """HOST[:PORT] as in the Host header: the port only when it is not the scheme's."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        """The RFC 6454 origin, which VAPID's `aud` claim names."""
        return f"{self.scheme}://{self.authority}"


def parse_allowed_hosts(value: str | None) -> tuple[str, ...]:
    """Read FIELDCRM_PUSH_ALLOWED_HOSTS: comma-separated host names (`*.domain` for any
    subdomain) and whole origins (`http://10.1.2.3:8080`), in one spelling each.

    Unset or blank means the public push services. Raises ValueError naming the bad entry, so a
    typo is reported rather than refusing every browser later, or letting anything through.
    """
    if value is None or not value.strip():
        return DEFAULT_ALLOWED_PUSH_HOSTS
    entries: list[str] = []
    for raw in value.split(","):
        text = raw.strip()
        if not text:
            continue
        entry = _origin_entry(text) if "://" in text else _name_entry(text)
        if entry not in entries:
            entries.append(entry)
    if not entries:
        raise ValueError("FIELDCRM_PUSH_ALLOWED_HOSTS lists no hosts; unset it to use the defaults")
    return tuple(entries)


def _name_entry(text: str) -> str:
    entry = text.lower()
    if _is_ip_address(entry.strip("[]")):
        raise ValueError(
            f"FIELDCRM_PUSH_ALLOWED_HOSTS: {text!r} is an address, and a host name only allows "
            "https to public addresses on port 443; name a push service of your own as a whole "
            f"origin instead, like http://{text}:8080"
        )
    base = entry[2:] if entry.startswith("*.") else entry
    if not _is_domain(base) or (entry.startswith("*.") and base.count(".") < 1):
        raise ValueError(
            f"FIELDCRM_PUSH_ALLOWED_HOSTS: {text!r} is not a host name; list host names "
            "separated by commas, like fcm.googleapis.com,*.push.apple.com (a wildcard needs a "
            "domain with a dot under it), or whole origins like http://10.1.2.3:8080"
        )
    if base == "localhost" or base.endswith(".localhost"):
        raise ValueError(
            f"FIELDCRM_PUSH_ALLOWED_HOSTS: {text!r} is always a loopback address, which a host "
            "name never allows; name a local push service as a whole origin, like "
            "http://localhost:8080"
        )
    return entry


def _origin_entry(text: str) -> str:
    problem = (
        f"FIELDCRM_PUSH_ALLOWED_HOSTS: {text!r} is not an origin; write a push service of your "
        "own as scheme://host:port, like http://10.1.2.3:8080 (no user name, path or query)"
    )
    match = _ORIGIN.fullmatch(text)
    if match is None:
        raise ValueError(problem)
    scheme = match["scheme"].lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(problem)
    try:
        host = _read_host(match["host"])
        port = _read_port(match["port"], scheme)
    except PushEndpointRefused:
        raise ValueError(problem) from None
    # Kept with its port always written, so that entries compare as strings.
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class _Rules:
    names: tuple[str, ...]  # exact host names and "*.domain" patterns
    origins: frozenset[tuple[str, str, int]]  # (scheme, host, port)


@functools.lru_cache(maxsize=16)
def _rules(allowed: tuple[str, ...]) -> _Rules:
    names: list[str] = []
    origins: set[tuple[str, str, int]] = set()
    for entry in parse_allowed_hosts(",".join(allowed)):
        if "://" in entry:
            scheme, _, rest = entry.partition("://")
            host, _, port = rest.rpartition(":")
            origins.add((scheme, host.strip("[]"), int(port)))
        else:
            names.append(entry)
    return _Rules(tuple(names), frozenset(origins))


def parse_endpoint(endpoint: str, allowed: tuple[str, ...]) -> PushTarget:
    """Read `endpoint` as the sender will, or raise PushEndpointRefused with a sentence.

    `allowed` is FIELDCRM_PUSH_ALLOWED_HOSTS as `parse_allowed_hosts` returns it. The endpoint
    is refused unless it matches a whole origin of the list exactly, or is
    `https://HOST[:443]/PATH` with HOST a DNS name the list names; and unless requests and
    urllib3 read from it the same scheme, host and port as this function.
    """
    rules = _rules(allowed)
    scheme, host, port = _read_endpoint(endpoint)
    if (scheme, host, port) in rules.origins:
        target = PushTarget(endpoint, scheme, host, port, public_only=False)
    else:
        _check_strict(scheme, host, port, rules, allowed)
        target = PushTarget(endpoint, scheme, host, port, public_only=True)
    _check_client_reading(target)
    return target


def check_endpoint(endpoint: str, allowed: tuple[str, ...]) -> None:
    """Raise PushEndpointRefused unless `endpoint` is allowed (see `parse_endpoint`)."""
    parse_endpoint(endpoint, allowed)


def _read_endpoint(endpoint: str) -> tuple[str, str, int]:
    if not isinstance(endpoint, str) or not endpoint:
        raise PushEndpointRefused("The push endpoint is missing; send the subscription's URL.")
    if len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise PushEndpointRefused(
            f"The push endpoint is {len(endpoint)} characters long; push services use URLs "
            f"under {MAX_ENDPOINT_LENGTH}, so this is not a real subscription."
        )
    if _CONTROL_OR_SPACE.search(endpoint) or not endpoint.isascii():
        raise PushEndpointRefused(
            f"The push endpoint contains spaces, control or non-ASCII characters; {_FORM}."
        )
    if "\\" in endpoint:
        raise PushEndpointRefused(
            "The push endpoint contains a backslash, which URL parsers read differently; "
            "push services never use one."
        )
    if "@" in endpoint:
        raise PushEndpointRefused(
            "The push endpoint contains '@' (a user name or password), which push services "
            "never use; this is not a real subscription."
        )
    if "#" in endpoint:
        raise PushEndpointRefused(
            f"The push endpoint has a fragment (#), which push services never use; {_FORM}."
        )
    authority = endpoint.partition("://")[2].partition("/")[0]
    if "%" in authority:
        raise PushEndpointRefused(
            "The push endpoint's host is percent-encoded; push services use plain host names."
        )
    match = _ENDPOINT.fullmatch(endpoint)
    if match is None:
        raise PushEndpointRefused(
            f"The push endpoint is not a URL of the form https://HOST/PATH; {_FORM}."
        )
    scheme = match["scheme"].lower()
    if scheme not in DEFAULT_PORTS:
        raise PushEndpointRefused(f"The push endpoint is not an https URL; {_FORM}.")
    host = _read_host(match["host"])
    return scheme, host, _read_port(match["port"], scheme)


def _read_host(text: str) -> str:
    """The host in one spelling: lower case, an IPv6 address without brackets."""
    if text.startswith("["):
        try:
            return str(ipaddress.IPv6Address(text[1:-1]))
        except ValueError:
            raise PushEndpointRefused(
                f"The push endpoint's host {text!r} is not an IPv6 address."
            ) from None
    host = text.lower()
    if _IPV4.fullmatch(host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:  # an octet over 255, or leading zeros (octal to some parsers)
            raise PushEndpointRefused(
                f"The push endpoint's host {text!r} is not an IPv4 address written plainly."
            ) from None
    if host.endswith("."):
        raise PushEndpointRefused(
            f"The push endpoint's host {text!r} ends with a dot; push services use host names "
            "without one."
        )
    if not _is_domain(host):
        raise PushEndpointRefused(
            f"The push endpoint's host {text!r} is not a host name (labels of letters, digits "
            "and hyphens, the last one starting with a letter)."
        )
    if any(label.startswith("xn--") for label in host.split(".")):
        raise PushEndpointRefused(
            f"The push endpoint's host {text!r} is an internationalised (IDNA) name, which "
            "push services do not use."
        )
    return host


def _read_port(text: str | None, scheme: str) -> int:
    if text is None:
        return DEFAULT_PORTS[scheme]
    port = int(text)
    if str(port) != text or not 0 < port < 65536:
        raise PushEndpointRefused(f"The push endpoint's port {text!r} is not a port number.")
    return port


def _is_domain(host: str) -> bool:
    """LDH labels whose last starts with a letter: never read as an address by any parser
    (`0x7f.1`, `2130706433` and `127.1` are 127.0.0.1 to inet_aton)."""
    return _HOST_NAME.fullmatch(host) is not None and host.rsplit(".", 1)[-1][:1].isalpha()


def _check_strict(
    scheme: str, host: str, port: int, rules: _Rules, allowed: tuple[str, ...]
) -> None:
    """An endpoint not on a whole origin of the list: https, port 443, a listed host name."""
    if any(origin[1] == host for origin in rules.origins):
        raise PushEndpointRefused(
            f"The push endpoint's origin {PushTarget('', scheme, host, port, False).origin} is "
            "not one listed in FIELDCRM_PUSH_ALLOWED_HOSTS: a push service named as a whole "
            "origin is allowed with exactly that scheme, host and port."
        )
    if _is_ip_address(host):
        raise PushEndpointRefused(
            f"The push endpoint's host {host!r} is an IP address; push services are reached by "
            "name (a push service of your own is named as a whole origin in "
            "FIELDCRM_PUSH_ALLOWED_HOSTS)."
        )
    if not _name_is_allowed(host, rules.names):
        raise PushEndpointRefused(
            f"The push endpoint's host {host!r} is not a known push service. The server only "
            f"sends to: {', '.join(allowed)} (set FIELDCRM_PUSH_ALLOWED_HOSTS to change this)."
        )
    if scheme != "https":
        raise PushEndpointRefused(
            "The push endpoint must use https; plain http is only accepted for a push service "
            "named as a whole origin (http://host:port) in FIELDCRM_PUSH_ALLOWED_HOSTS."
        )
    if port != 443:
        raise PushEndpointRefused(
            f"The push endpoint's port {port} is not 443; push services answer on the https "
            "port (a push service of your own is named as a whole origin in "
            "FIELDCRM_PUSH_ALLOWED_HOSTS)."
        )


def _name_is_allowed(host: str, names: tuple[str, ...]) -> bool:
    for entry in names:
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


def _check_client_reading(target: PushTarget) -> None:
    """Refuse the endpoint unless requests (which urllib3 parses for) and the standard
    library read from it, and from the URL requests prepares to send, what we read."""
    try:
        prepared = requests.Request("POST", target.endpoint).prepare().url or ""
        readings = [_reading(parse_url(target.endpoint)), _reading(parse_url(prepared))]
        readings += [_split_reading(target.endpoint), _split_reading(prepared)]
    except (ValueError, requests.RequestException) as exc:
        raise PushEndpointRefused(
            f"The push endpoint is not a URL the server's HTTP client can send to ({exc})."
        ) from None
    ours = (target.scheme, target.host, target.port)
    if any(reading != ours for reading in readings):
        raise PushEndpointRefused(
            "The push endpoint is read differently by different URL parsers, so the server "
            f"cannot be sure where it points; {_FORM}."
        )


def _reading(url: object) -> tuple[str, str, int]:
    scheme = str(getattr(url, "scheme", "") or "").lower()
    host = str(getattr(url, "host", "") or "").lower().strip("[]")
    port = getattr(url, "port", None)
    return scheme, _one_spelling(host), int(port) if port else DEFAULT_PORTS.get(scheme, -1)


def _split_reading(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    return scheme, _one_spelling(host), parts.port or DEFAULT_PORTS.get(scheme, -1)


def _one_spelling(host: str) -> str:
    return str(ipaddress.ip_address(host)) if _is_ip_address(host) else host


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


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
