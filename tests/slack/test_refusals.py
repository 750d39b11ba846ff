"""A forged Slack request is refused, and counted as a Slack refusal with its status."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.slack.kit import SlackKit, mention


async def test_a_forged_request_counts_as_a_slack_refusal(slack_kit: SlackKit) -> None:
    labels = {"channel": "slack", "reason": "401"}
    before = REGISTRY.get_sample_value("switchboard_inbound_refused_total", labels) or 0
    event = mention("deploy v1.2.3 to production", slack_kit.fake.next_ts())
    assert (await slack_kit.event(event, secret="not-the-secret")).status_code == 401
    assert REGISTRY.get_sample_value("switchboard_inbound_refused_total", labels) == before + 1
