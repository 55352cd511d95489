"""Which addresses a push may connect to, found once per send and then kept (SPEC 6).

An endpoint allowed by a host name must resolve to public addresses only, so that a DNS
answer cannot turn a send into a request to the server's own network (loopback, private,
link-local, the cloud's metadata address, ...). The answer that was checked is the one
connected to (`sender.py` pins it): a resolver that answers differently a moment later, as in
DNS rebinding, is never asked again for that send. An endpoint allowed by a whole origin may
resolve to any address, and is pinned the same way.

The resolver is a plain function, `system_resolver` by default, so that tests substitute
their own answers instead of asking the network.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Sequence

from server.push.endpoints import PushTarget

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# (host, port) -> the addresses it resolves to, in the order to try them.
Resolver = Callable[[str, int], Sequence[str]]

# NAT64 (RFC 6052, RFC 8215): an IPv6 address that stands for the IPv4 address in its last
# 32 bits, which must be public itself.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))

# IANA's special-purpose registries, written out because what `ipaddress` counts as private
# changes between Python versions (192.0.0.0/24 did in 3.12.4). No push service is in them.
_SPECIAL = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/8", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16",
        "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip


class AddressRefused(Exception):
    """The host resolved to an address the server must not send to; `detail` says which.
    Sending again would not help: a public push service never resolves so."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class LookupFailed(Exception):
    """The host could not be resolved now (no answer, a DNS failure); worth another try."""


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the operating system gives for `host`, in its order of preference."""
    answers = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_ADDRCONFIG
    )
    return [str(answer[4][0]) for answer in answers]


def is_public_address(address: IPAddress) -> bool:
    """Whether a push may be sent to `address` under the strict rules: a globally routable
    unicast address. IPv4-mapped, NAT64 and 6to4 addresses are judged by the IPv4 address
    they carry; Teredo, multicast and reserved ranges are never public here."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if any(address in network for network in _NAT64):
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None:
            return is_public_address(address.sixtofour)
        if address.teredo is not None or address.is_site_local:
            return False
    if any(address in network for network in _SPECIAL):
        return False
    return address.is_global and not address.is_multicast and not address.is_reserved


def addresses_for(target: PushTarget, resolver: Resolver) -> tuple[IPAddress, ...]:
    """The addresses to connect to for `target`, every one of them checked.

    An IP address in the endpoint (only a whole origin allows one) is used as it is. Otherwise
    `resolver` is asked once; under the strict rules (`target.public_only`) a single
    non-public answer refuses them all, since which one a client would use is up to chance.
    Raises AddressRefused (never send) or LookupFailed (try again later).
    """
    if target.host_is_address:
        return (ipaddress.ip_address(target.host),)
    try:
        answers = resolver(target.host, target.port)
    except OSError as exc:
        raise LookupFailed(f"could not resolve {target.host}: {exc}") from exc
    found: list[IPAddress] = []
    for answer in answers:
        try:
            address = ipaddress.ip_address(answer)
        except ValueError:
            raise AddressRefused(
                f"{target.host} resolved to {answer!r}, which is not an IP address"
            ) from None
        if target.public_only and not is_public_address(address):
            raise AddressRefused(
                f"{target.host} resolved to {address}, which is not a public address; the server "
                "does not send to its own network (a push service you run is named as a whole "
                "origin in FIELDCRM_PUSH_ALLOWED_HOSTS)"
            )
        if address not in found:
            found.append(address)
    if not found:
        raise LookupFailed(f"{target.host} resolved to no address")
    return tuple(found)


class RememberingResolver:
    """A resolver that asks the one it wraps once per (host, port) and keeps the answer, for
    one batch of sends: many reminders to one push service cost one lookup, and reuse the
    connections to the one address they all get."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, int], Sequence[str]] = {}

    def __call__(self, host: str, port: int) -> Sequence[str]:
        with self._lock:
            known = self._answers.get((host, port))
        if known is not None:
            return known
        answers = list(self._resolver(host, port))
        with self._lock:
            return self._answers.setdefault((host, port), answers)
