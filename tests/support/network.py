"""Keep tests on this machine: every connection the HTTP client makes is noted, and one to
an address that is not loopback is refused before a packet leaves (so is one to a name: the
push sender connects to addresses it checked, never to names)."""

from __future__ import annotations

import errno
import ipaddress
from typing import Any

import pytest
import urllib3.util.connection


class Connections:
    """The (host, port) of every connection attempt, in order."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int]] = []


def guard_connections(monkeypatch: pytest.MonkeyPatch) -> Connections:
    connections = Connections()
    connect = urllib3.util.connection.create_connection

    def loopback_only(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        host, port = address
        connections.attempts.append((host, port))
        try:
            loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise OSError(errno.ECONNREFUSED, f"the test refuses a connection to {host}")
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", loopback_only)
    return connections
