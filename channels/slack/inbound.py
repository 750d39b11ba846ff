"""What reaches us from Slack, through one bolt AsyncApp: messages, button clicks, the reject
modal. bolt runs with ``process_before_response``: a listener's work (the write to the store)
is done before bolt answers, so the ack always comes after the event is stored, and a failed
write answers 500 and Slack retries. No model is called here: a worker picks the thread up.
"""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.web.async_client import AsyncWebClient

from agent.config import Registry
from channels.slack import payloads
from channels.slack.decisions import Decisions
from channels.slack.direct import Direct
from channels.slack.messages import Messages
from channels.slack.names import Names
from channels.slack.working import Working
from store.port import ChannelPort


class _ClientGivenOnPurpose(logging.Filter):
    """bolt reads SLACK_BOT_TOKEN from the environment by itself and warns that the client we
    hand it (pointed at SLACK_API_URL) wins over it; that is the intent, so say nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


logging.getLogger("slack_bolt.AsyncApp").addFilter(_ClientGivenOnPurpose())


class SlackInbound:
    """The bolt app, its listeners bound to the store."""

    def __init__(
        self,
        port: ChannelPort,
        agent: str,
        client: AsyncWebClient,
        signing_secret: str | None,
        working: Working | None = None,
        direct: Direct | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.messages = Messages(port, agent, working, direct)
        self.decisions = Decisions(port, Names(client), registry)
        self.bolt = AsyncApp(
            client=client,
            signing_secret=signing_secret or "",
            # Socket Mode alone has no HTTP endpoint, and Slack does not sign its envelopes.
            request_verification_enabled=signing_secret is not None,
            process_before_response=True,
            # Per request, these add what no listener here reads: the say / set_status /
            # set_title helpers of an event (we answer through the outbox), and a custom
            # workflow step's token (we define no steps). The rest stay: signature and
            # replay check, url_verification and ssl_check, the bot's own identity
            # (context.bot_user_id) and the skipping of its own events.
            attaching_conversation_kwargs_enabled=False,
            attaching_function_token_enabled=False,
        )
        self.bolt.event("app_mention")(self.messages.on_event)
        self.bolt.event("message")(self.messages.on_event)
        self.bolt.action(payloads.APPROVE)(self.decisions.on_click)
        self.bolt.action(payloads.REJECT)(self.decisions.on_click)
        self.bolt.view(payloads.REASON_VIEW)(self.decisions.on_reason)
        self.bolt.action(payloads.APPROVE_THREAD)(self.decisions.on_click)
        self.bolt.action(payloads.EDIT)(self.decisions.on_click)
        self.bolt.view(payloads.EDIT_VIEW)(self.decisions.on_edit)

    async def drain(self) -> None:
        """Wait for the calls back to Slack still under way (at shutdown, and in tests)."""
        await self.decisions.drain()
        await self.messages.drain()
