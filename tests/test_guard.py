"""The suite's own guard: a test that tries to leave the machine fails at connect()."""

from __future__ import annotations

import socket

import pytest


@pytest.mark.parametrize("address", [("203.0.113.7", 443), ("10.1.2.3", 6379)])
def test_non_loopback_connect_is_refused(address: tuple[str, int]) -> None:
    with socket.socket() as s, pytest.raises(OSError, match="only loopback is allowed"):
        s.connect(address)


def test_loopback_is_allowed(redis_url: str) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
