"""The address a client logs in from, as the login throttle keys it.

It is the socket's peer, unless the peer is one of FIELDCRM_TRUSTED_PROXIES: then it is
the right-most address of X-Forwarded-For that is not a trusted proxy, i.e. the last hop
a trusted proxy saw. What a client writes into X-Forwarded-For itself sits to the left of
what the proxies append, so it is never believed; and with no trusted proxy configured the
header is ignored altogether.

An IPv6 address is keyed by its /64 network: one machine is routinely given a whole /64, so
keying on the full address would let it change address at every guess.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ADDRESS_MAX = 64  # login_attempts.address
IPV6_PREFIX = 64


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted_proxies: Sequence[str]
) -> str:
    """The key of the client's address: `peer` is the socket's, `forwarded_for` the values of
    every X-Forwarded-For header in order, `trusted_proxies` the settings' networks."""
    current = parse_address(peer or "")
    if current is None:
        return (peer or "unknown")[:ADDRESS_MAX]  # no IP peer (a Unix socket, a test client)
    networks = trusted_networks(tuple(trusted_proxies))
    if not _trusted(current, networks):
        return address_key(current)
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            # Not an address where a trusted proxy should have written one: believe no more
            # of the header, and count the attempt against the last hop that was believed.
            break
        current = address
        if not _trusted(address, networks):
            break
    return address_key(current)


def parse_address(text: str) -> IPAddress | None:
    """An IP address as proxies write it (`1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:443`,
    `2001:db8::1`), IPv4-mapped IPv6 as IPv4; None if it is not one."""
    text = text.strip()
    if text.startswith("["):
        text, bracket, _ = text[1:].partition("]")
        if not bracket:
            return None
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_key(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


@functools.lru_cache(maxsize=8)
def trusted_networks(trusted_proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in trusted_proxies)


def _trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address in network for network in networks)
