"""The suite-wide network guard (tests/conftest.py) is really on."""

from __future__ import annotations

import socket

import pytest


def test_network_guard_blocks_the_outside_world() -> None:
    with pytest.raises(OSError, match="forbidden"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    with pytest.raises(OSError, match="forbidden"):
        socket.getaddrinfo("pypi.org", 443)


def test_loopback_stays_open() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
