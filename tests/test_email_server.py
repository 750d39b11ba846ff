"""The SMTP protocol's own address reading gives what aiosmtpd's gives, for every shape."""

from __future__ import annotations

import asyncio

import pytest
from aiosmtpd.smtp import SMTP

from channels.email import server
from channels.email.server import _Smtp


class _Handler:
    pass


ADDRESSES = [
    "<alice@example.com>",
    "<ALICE@Example.COM>",
    "<>",
    '<"a>b"@example.com>',
    '<"x y"@example.com>',
    "<@relay.example.com:alice@example.com>",
    "< alice@example.com >",
    "<alice@exa mple.com>",
    "<alice>",
    "<alice@example.com",
    "alice@example.com",
    "<ü@example.com>",
    "<a(b)@example.com>",
    "<a\\@b@example.com>",
    "<@>",
    "",
]
TAILS = ["", " SIZE=123", "  SIZE=1 BODY=8BITMIME", " SIZE=1 ", "\tSIZE=1", "SIZE=3", " ",
         " (c)", "(c) SIZE=3", " SIZE=1 (c)", ' A="b c"', " ü=1", " >", ">"]  # fmt: skip


@pytest.mark.parametrize("limit", [0, 5])
async def test_addresses_read_as_aiosmtpd_reads_them(limit: int) -> None:
    loop = asyncio.get_running_loop()  # else aiosmtpd makes (and leaves open) a loop
    ours, theirs = _Smtp(_Handler(), loop=loop), SMTP(_Handler(), loop=loop)
    ours.local_part_limit = theirs.local_part_limit = limit
    server._ADDRESSES.clear()
    for _ in range(2):  # the second time from what the first remembered
        for address in ADDRESSES:
            for tail in TAILS:
                arg = address + tail
                assert ours._getaddr(arg) == theirs._getaddr(arg), arg


async def test_remembered_addresses_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "_ADDRESSES_KEPT", 3)
    server._ADDRESSES.clear()
    ours = _Smtp(_Handler(), loop=asyncio.get_running_loop())
    for n in range(10):
        assert ours._getaddr(f"<u{n}@example.com> SIZE={n}") == (f"u{n}@example.com", f"SIZE={n}")
        assert len(server._ADDRESSES) <= 3
