"""Whose address a login counts against (server/auth/addresses.py), and the throttle's
delays (server/auth/throttle.py)."""

from __future__ import annotations

import pytest

from server.auth.addresses import client_address, parse_address
from server.auth.throttle import Throttle

PROXY = ("127.0.0.1/32",)
PROXIES = ("127.0.0.1/32", "10.0.0.0/8", "fd00::/8")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted", "expected"),
    [
        # No trusted proxy: the peer, whatever the header says.
        ("192.0.2.1", ["203.0.113.9"], (), "192.0.2.1"),
        ("127.0.0.1", ["203.0.113.9"], (), "127.0.0.1"),
        # A peer that is not a trusted proxy: its header is not believed.
        ("192.0.2.1", ["203.0.113.9"], PROXY, "192.0.2.1"),
        # A trusted proxy: the right-most address it did not append itself.
        ("127.0.0.1", ["203.0.113.9"], PROXY, "203.0.113.9"),
        ("127.0.0.1", ["6.6.6.6, 203.0.113.9"], PROXY, "203.0.113.9"),
        ("127.0.0.1", ["6.6.6.6", "203.0.113.9"], PROXY, "203.0.113.9"),
        # A chain of trusted proxies is walked through.
        ("127.0.0.1", ["6.6.6.6, 203.0.113.9, 10.1.2.3"], PROXIES, "203.0.113.9"),
        ("127.0.0.1", ["203.0.113.9,10.1.2.3, 10.4.5.6"], PROXIES, "203.0.113.9"),
        # Every hop trusted: the left-most.
        ("127.0.0.1", ["10.9.9.9, 10.1.2.3"], PROXIES, "10.9.9.9"),
        # No header from the trusted proxy: the proxy itself.
        ("127.0.0.1", [], PROXY, "127.0.0.1"),
        ("127.0.0.1", [""], PROXY, "127.0.0.1"),
        # What is not an address stops the walk: the last hop believed is used.
        ("127.0.0.1", ["203.0.113.9, garbage"], PROXY, "127.0.0.1"),
        ("127.0.0.1", ["203.0.113.9, garbage, 10.1.2.3"], PROXIES, "10.1.2.3"),
        # Ports and brackets as some proxies write them.
        ("127.0.0.1", ["203.0.113.9:51234"], PROXY, "203.0.113.9"),
        ("127.0.0.1", ["[2001:db8::1]:443"], PROXY, "2001:db8::/64"),
        # IPv6 is keyed by its /64, IPv4-mapped IPv6 as IPv4.
        ("2001:db8:1:2:3:4:5:6", [], (), "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", [], (), "192.0.2.7"),
        ("::1", ["203.0.113.9"], ("::1/128",), "203.0.113.9"),
        ("fd00::5", ["2001:db8:9::1, fd00::7"], PROXIES, "2001:db8:9::/64"),
        # No IP peer at all (a Unix socket, a test client).
        (None, ["203.0.113.9"], PROXY, "unknown"),
        ("testclient", [], PROXY, "testclient"),
    ],
)
def test_client_address(
    peer: str | None, forwarded_for: list[str], trusted: tuple[str, ...], expected: str
) -> None:
    assert client_address(peer, forwarded_for, trusted) == expected


@pytest.mark.parametrize("text", ["", "x", "1.2.3", "1.2.3.4.5", "[::1", "999.1.1.1", "a:b:c"])
def test_what_is_not_an_address(text: str) -> None:
    assert parse_address(text) is None


def test_the_delay_is_nothing_for_the_free_failures_then_doubles_up_to_the_cap() -> None:
    throttle = Throttle(free_failures=5, first_delay_s=1.0, cap_s=60.0)
    delays = [throttle.delay(n) for n in range(14)]
    assert delays == [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert throttle.delay(10**9) == 60
