"""The Slack channel: chat with an agent in a Slack thread, approve its tool calls with buttons.

On when SLACK_BOT_TOKEN is set, with SLACK_SIGNING_SECRET for the Events API at
POST /slack/events and/or SLACK_APP_TOKEN for Socket Mode.
"""

from __future__ import annotations

from agent import routing
from agent.errors import ConfigError
from channels.pagelinks import page_links
from channels.registry import Channel, Services
from channels.slack import http, socket
from channels.slack.direct import Direct
from channels.slack.inbound import SlackInbound
from channels.slack.sender import SlackSender
from channels.slack.settings import SlackSettings
from channels.slack.webapi import KeptAliveClient
from channels.slack.withdrawn import Posts
from channels.slack.working import Working

__all__ = ["SlackSettings", "build", "channel"]


SETTINGS = SlackSettings
"""The settings this channel reads; absent, the channel is off."""


def build(services: Services) -> Channel | None:
    return channel(services, SlackSettings())


def channel(services: Services, settings: SlackSettings) -> Channel | None:
    """The channel for these settings; None when no bot token is configured."""
    if settings.slack_bot_token is None:
        return None
    secret = settings.slack_signing_secret
    app_token = settings.slack_app_token
    if secret is None and app_token is None:
        raise ConfigError(
            "SLACK_BOT_TOKEN is set, but neither SLACK_SIGNING_SECRET (Events API over HTTP) "
            "nor SLACK_APP_TOKEN (Socket Mode)"
        )
    agent = services.registry.get(settings.slack_agent)
    if agent is None:
        raise ConfigError(f"SLACK_AGENT={settings.slack_agent!r} is not a configured agent")
    client = KeptAliveClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    signing_secret = secret.get_secret_value() if secret is not None else None
    working = Working(client, services.redis)
    direct = Direct(services.redis)
    inbound = SlackInbound(
        services.port, agent.name, client, signing_secret, working, direct, services.registry
    )
    # Each agent's own channels; a mention elsewhere, and a DM, go to SLACK_AGENT / default.
    inbound.messages.channels = routing.by_channel(services.registry.agents, "slack")
    pages = page_links(services.settings, services.redis)
    sender = SlackSender(client, working, direct, pages, Posts(services.redis))
    result = Channel(name="slack", sender=sender, closers=[inbound.drain, client.close])
    if signing_secret is not None:
        result.mount = lambda app: http.mount(app, inbound.bolt, signing_secret, inbound.messages)
    if app_token is not None:
        result.listeners.append(socket.listener(inbound.bolt, app_token.get_secret_value()))
    return result
