"""Display names from users.info (cached) and the approver list a refusal shows."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from channels.slack.names import Names, approvers_text
from tests.fakes.slack_server import BOT_TOKEN, FakeSlack


async def test_names_are_read_once_and_unknown_users_have_none(fake_slack: FakeSlack) -> None:
    names = Names(AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url))
    fake_slack.users["U0ALICE"] = "alice.s"
    assert await names.name("U0ALICE") == "alice.s"
    assert await names.name("U0ALICE") == "alice.s"
    assert await names.name("U0NOBODY") is None
    assert [c["user"] for c in fake_slack.called("users.info")] == ["U0ALICE", "U0NOBODY"]


def test_approvers_are_shown_as_mentions() -> None:
    shown = approvers_text(["slack:U0A", "slack:S0OPS", "email:a@example.com", "rest:*"])
    assert shown == "<@U0A>, <!subteam^S0OPS>, email:a@example.com, anyone on rest"
    assert approvers_text([]) == "anyone in this conversation"
