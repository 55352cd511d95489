"""Which addresses a push may go to under the strict rules, and the one lookup per send."""

from __future__ import annotations

import ipaddress

import pytest

from server.push.addresses import (
    AddressRefused,
    LookupFailed,
    RememberingResolver,
    addresses_for,
    is_public_address,
)
from server.push.endpoints import PushTarget

# Where a DNS answer must never lead a send: the server's own machine and network, its
# cloud's metadata service, and ranges that are not unicast on the internet.
NOT_PUBLIC = [
    "127.0.0.1", "127.8.9.10",  # loopback
    "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1",  # private
    "169.254.169.254",  # link-local: the cloud's metadata service
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0", "0.1.2.3",  # this network
    "224.0.0.251", "239.255.255.250",  # multicast
    "240.0.0.1", "255.255.255.255",  # reserved, broadcast
    "192.0.2.10", "198.51.100.1", "203.0.113.5",  # documentation
    "198.18.0.1",  # benchmarking
    "192.0.0.8",  # IETF protocol assignments
    "::1", "::",  # loopback, unspecified
    "fc00::1", "fd12:3456::1",  # unique local
    "fe80::1",  # link-local
    "fec0::1",  # site-local (deprecated)
    "ff02::1", "ff0e::1",  # multicast
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
    "64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b:1::a9fe:a9fe",  # NAT64 of private ones
    "2002:a00:1::1", "2002:7f00:1::1",  # 6to4 of private ones
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "::127.0.0.1", "::8.8.8.8",  # IPv4-compatible (deprecated)
    "2001:db8::1",  # documentation
    "100::1",  # discard
]  # fmt: skip

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "142.250.74.106",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_private_and_special_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_internet_unicast_addresses_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def strict(host: str = "push.fieldcrm.example") -> PushTarget:
    return PushTarget(f"https://{host}/x", "https", host, 443, public_only=True)


def test_one_private_answer_among_public_ones_refuses_them_all() -> None:
    with pytest.raises(AddressRefused, match="10.0.0.1"):
        addresses_for(strict(), lambda host, port: ["8.8.8.8", "10.0.0.1"])


def test_a_whole_origin_may_resolve_to_private_addresses() -> None:
    target = PushTarget("http://push:8080/x", "http", "push", 8080, public_only=False)

    found = addresses_for(target, lambda host, port: ["10.0.0.1", "10.0.0.1", "fd00::2"])

    assert [str(a) for a in found] == ["10.0.0.1", "fd00::2"]


def test_an_address_in_the_endpoint_is_not_looked_up() -> None:
    target = PushTarget("http://127.0.0.1:8080/x", "http", "127.0.0.1", 8080, public_only=False)

    def no_lookups(host: str, port: int) -> list[str]:
        raise AssertionError("looked up")

    assert [str(a) for a in addresses_for(target, no_lookups)] == ["127.0.0.1"]


@pytest.mark.parametrize("answers", [[], OSError("no such name")])
def test_no_answer_is_worth_another_try(answers: list[str] | OSError) -> None:
    def resolver(host: str, port: int) -> list[str]:
        if isinstance(answers, OSError):
            raise answers
        return answers

    with pytest.raises(LookupFailed):
        addresses_for(strict(), resolver)


def test_an_answer_that_is_not_an_address_is_refused() -> None:
    with pytest.raises(AddressRefused):
        addresses_for(strict(), lambda host, port: ["push.fieldcrm.example"])


def test_a_batch_asks_once_per_host() -> None:
    asked: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["8.8.8.8"]

    remembering = RememberingResolver(resolver)
    for _ in range(3):
        assert remembering("a.example", 443) == ["8.8.8.8"]
    remembering("b.example", 443)

    assert asked == [("a.example", 443), ("b.example", 443)]
