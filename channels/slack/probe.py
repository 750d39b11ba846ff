"""``main.py check --live`` for Slack: the bot token works (``auth.test``)."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from channels.slack.settings import SlackSettings


async def probe(settings: SlackSettings) -> str:
    """What Slack says we are; raises ProbeFailed-worthy errors as RuntimeError."""
    assert settings.slack_bot_token is not None
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    try:
        reply = await client.auth_test()
    except SlackApiError as exc:
        raise RuntimeError(f"auth.test refused: {exc.response.get('error')}") from None
    return f"bot {reply.get('user')} in team {reply.get('team')}"
