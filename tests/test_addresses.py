"""Approver and notify addresses in switchboard.toml (agent/addresses.py): table-driven."""

from __future__ import annotations

import re

import pytest

from agent.addresses import Role, check


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("rest:*", "approver"),
        ("rest:ops", "approver"),
        ("slack:U0123ABCD", "approver"),
        ("slack:W0123ABCD", "approver"),
        ("slack:S0456EFGH", "approver"),
        ("slack:C0789IJKL", "notify"),
        ("sms:+15551234567", "approver"),
        ("sms:+15551234567", "notify"),
        ("email:ops@example.com", "approver"),
        ("Slack:U0123ABCD", "approver"),
    ],
)
def test_valid_addresses(text: str, role: Role) -> None:
    assert check(text, role) == text


@pytest.mark.parametrize(
    ("text", "role", "error"),
    [
        (
            "slak:U1",
            "approver",
            "'slak:U1': unknown channel 'slak' (did you mean 'slack'? channels: email, rest, "
            "slack, sms)",
        ),
        (
            "fax:123",
            "approver",
            "'fax:123': unknown channel 'fax' (channels: email, rest, slack, sms)",
        ),
        ("sms:123", "approver", "'sms:123': sms needs a phone number in E.164 form (+15551234567)"),
        ("sms:5551234567", "notify", "'sms:5551234567': sms needs a phone number in E.164 form"),
        ("slack:alice", "approver", "'slack:alice': slack needs a Slack user id (U0123ABCD)"),
        ("slack:C0789IJKL", "approver", "'slack:C0789IJKL': slack needs a Slack user id"),
        ("email:ops", "approver", "'email:ops': email needs an email address (ops@example.com)"),
        ("rest:two words", "approver", "'rest:two words': rest needs '*'"),
        ("U0123ABCD", "approver", "'U0123ABCD' is not channel:address (e.g. slack:U0123ABCD)"),
        ("slack:", "approver", "'slack:' is not channel:address"),
    ],
)
def test_wrong_addresses_say_what_they_should_be(text: str, role: Role, error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)) as caught:
        check(text, role)
    assert str(caught.value).startswith(error)
