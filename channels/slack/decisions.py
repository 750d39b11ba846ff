"""Approve and Reject: the buttons on an approval message and the modal asking why.

The decision is bound to the request in the store before the ack; what can wait (updating
the message, ephemeral notes, opening the modal) runs after it, in the background.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, Literal

import aiohttp
from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from agent.briefs import WITHDRAWN
from agent.config import Registry
from agent.errors import ToolFailed
from channels.edits import edited_call
from channels.late import late_reply
from channels.slack import blocks, editing, names, payloads, withdrawn
from channels.slack.blocks import Decided
from channels.slack.markup import escape
from channels.slack.payloads import MessageRef
from channels.slack.sender import failure
from model.events import Approved, Rejected, decided
from model.records import RequestRecord, RequestView
from store.edits import changed
from store.errors import (
    GrantNotOffered,
    NotEditable,
    QuorumIncomplete,
    RequestAlreadyAnswered,
    RequestExpired,
    RequestNotFound,
    RequestWithdrawn,
)
from store.port import ChannelPort

log = logging.getLogger("switchboard.slack")

CHANNEL = "slack"
_API_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError, OSError)

GONE = "This request no longer exists."
UPDATE_ATTEMPTS = 3
DRAIN_SECONDS = 10.0


class Decisions:
    """The block_actions and view_submission listeners, and the calls back they start."""

    def __init__(
        self,
        port: ChannelPort,
        people: names.Names | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.port = port
        self.people = people
        self.registry = registry
        """The agents' tools, to validate an edit (None: the Edit modal refuses)."""
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_click(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        click = payloads.click(body)
        if click is None:
            await ack()
            return
        ref = MessageRef(
            request_id=click.request_id,
            channel=click.channel,
            message_ts=click.message_ts,
            thread_ts=click.thread_ts,
        )
        refusal, view = await self._check(client, click.request_id, click.user)
        if refusal is not None or view is None:
            await ack()
            self.later(self._ephemeral(client, ref, click.user, refusal or GONE))
            if view is not None and view.status == "answered" and click.buttons_shown:
                # Decided elsewhere (the API, another channel) or the update was lost:
                # the message still offers buttons, so show the decision on it now.
                self.later(self._refresh(client, ref, view))
            elif view is not None and view.status == "withdrawn" and click.buttons_shown:
                self.later(self._withdrawn(client, ref, view))  # before the run loop's update
            return
        record = view.request
        if click.decision == "reject":
            await ack()  # the reason comes with the modal; nothing is decided yet
            modal = blocks.reason_modal(ref, record.tool or "")
            self.later(self._open(client, click.trigger_id, modal, ref, click.user))
            return
        if click.edit:
            await ack()  # the edited values come with the modal; nothing is decided yet
            modal = editing.modal(ref, record.tool or "", record.arguments or {}, record.editable)
            self.later(self._open(client, click.trigger_id, modal, ref, click.user))
            return
        grant = "thread" if click.grant else None
        outcome = await self._decide(record, click.user, "approve", None, grant=grant)
        await ack()
        if outcome is None:  # settled just before this click: say what became of it
            self.later(self._ephemeral(client, ref, click.user, await self._late(record)))
        elif isinstance(outcome, str):
            self.later(self._ephemeral(client, ref, click.user, outcome))
        else:
            self.later(self._update(client, ref, record, outcome))

    async def on_edit(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """The edit modal, submitted: a bad value answers in the modal, nothing decided."""
        edit = editing.submission(body)
        if edit is None:
            await ack()
            return
        fields = list(edit.values)
        refusal, view = await self._check(client, edit.ref.request_id, edit.user)
        if refusal is not None or view is None:
            await ack(
                response_action="errors", errors={editing.block_of(fields[0]): refusal or GONE}
            )
            return
        record = view.request
        try:
            if self.registry is None:
                raise ToolFailed(record.tool or "?", "editing is not available here")
            changes = editing.changes(record.arguments or {}, edit.values)
            call = await edited_call(self.port, self.registry, record, changes)
        except NotEditable as exc:
            await ack(response_action="errors", errors={editing.block_of(fields[0]): str(exc)})
            return
        except ToolFailed as exc:
            block = editing.error_block(exc.error, fields)
            await ack(response_action="errors", errors={block: exc.error[:2000]})
            return
        outcome = await self._decide(record, edit.user, "approve", None, arguments=call)
        if not isinstance(outcome, Decided):
            said = await self._late(record) if outcome is None else outcome
            await ack(response_action="errors", errors={editing.block_of(fields[0]): said})
            return
        await ack()
        self.later(self._update(client, edit.ref, record, outcome))

    async def on_reason(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        reason = payloads.reason(body)
        if reason is None:
            await ack(response_action="errors", errors={payloads.REASON_BLOCK: "Give a reason."})
            return
        refusal, view = await self._check(client, reason.ref.request_id, reason.user)
        outcome: Decided | str | None = None
        if refusal is None and view is not None:
            outcome = await self._decide(view.request, reason.user, "reject", reason.reason)
            if outcome is None:
                refusal = await self._late(view.request)
            elif isinstance(outcome, str):
                refusal = outcome
        if view is None or not isinstance(outcome, Decided):
            await ack(response_action="errors", errors={payloads.REASON_BLOCK: refusal or GONE})
            return
        await ack()
        self.later(self._update(client, reason.ref, view.request, outcome))

    async def _check(
        self, client: AsyncWebClient, request_id: str, user: str
    ) -> tuple[str | None, RequestView | None]:
        """(refusal, request): why this user cannot decide this request now, if they cannot."""
        try:
            view = await self.port.request(request_id)
        except RequestNotFound:
            return GONE, None
        if not await self._may_decide(client, view.request, user):
            return names.not_an_approver(view.request.approvers), view
        if view.status != "pending":
            return _late_text(view), view  # "already approved by ... at 14:02 UTC", "withdrawn"
        return None, view

    async def _late(self, record: RequestRecord) -> str:
        """What became of a request someone settled just before this click."""
        try:
            return _late_text(await self.port.request(record.request_id))
        except RequestNotFound:
            return GONE

    async def _may_decide(self, client: AsyncWebClient, record: RequestRecord, user: str) -> bool:
        if record.may_answer(CHANNEL, user):
            return True
        groups = [a.split(":", 1)[1] for a in record.approvers if a.startswith("slack:S")]
        for group in groups:  # a Slack user group (subteam) id: ask Slack who is in it now
            try:
                members = await client.usergroups_users_list(usergroup=group)
            except _API_ERRORS as exc:
                log.warning("cannot list user group %s: %s", group, exc)
                continue
            if user in (members.get("users") or []):
                return True
        return False

    async def _decide(
        self,
        record: RequestRecord,
        user: str,
        decision: Literal["approve", "reject"],
        comment: str | None,
        **extra: Any,
    ) -> Decided | str | None:
        """Bind the decision to the request, once; else why not: None when it was settled
        first (decided, withdrawn, expired), a refusal's text (an edit or grant refused).

        ``extra``: what an approval carries beside yes (an edited call, a grant).
        """
        response = decided(
            decision,
            request_id=record.request_id,
            channel=CHANNEL,
            responder=user,
            comment=comment,
        )
        if extra:
            response = response.model_copy(update=extra)
        try:
            # Permission was checked above (user groups need Slack, which the store cannot ask).
            await self.port.answer(record.request_id, response, check=False)
        except (RequestAlreadyAnswered, RequestWithdrawn, RequestExpired):
            return None
        except (QuorumIncomplete, GrantNotOffered, NotEditable) as exc:
            return str(exc)
        return Decided(
            decision=decision, user=user, at=response.at, comment=_shown(record, extra) or comment
        )

    # ---- calls back to Slack, after the ack ---------------------------------------------
    def later(self, job: Coroutine[Any, Any, None]) -> None:
        """Run a call back to Slack after the ack; its failure is logged, never raised."""
        task = asyncio.create_task(_logged(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the calls back to Slack still under way (at shutdown, and in tests);
        what is still running after DRAIN_SECONDS is cancelled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_SECONDS
        while self._tasks and loop.time() < deadline:
            await asyncio.wait(set(self._tasks), timeout=deadline - loop.time())
        for task in set(self._tasks):
            task.cancel()

    async def _update(
        self, client: AsyncWebClient, ref: MessageRef, record: RequestRecord, outcome: Decided
    ) -> None:
        """Show the decision on the approval message, buttons removed (a few tries on 429)."""
        if self.people is not None and outcome.channel == CHANNEL and outcome.name is None:
            outcome = replace(outcome, name=await self.people.name(outcome.user))
        for attempt in range(1, UPDATE_ATTEMPTS + 1):
            try:
                await client.chat_update(
                    channel=ref.channel,
                    ts=ref.message_ts,
                    text=blocks.decided_text(outcome),
                    blocks=blocks.decided(record.tool or "", record.arguments or {}, outcome),
                )
                return
            except _API_ERRORS as exc:
                failed = failure(exc, "chat.update")
                if not failed.transient or attempt == UPDATE_ATTEMPTS:
                    log.warning("could not update approval message %s: %s", ref.message_ts, exc)
                    return
                await asyncio.sleep(min(failed.retry_after or attempt, 30.0))

    async def _refresh(self, client: AsyncWebClient, ref: MessageRef, view: RequestView) -> None:
        """Show on the message the decision stored with the request."""
        e = view.response
        if isinstance(e, Approved | Rejected):
            outcome = Decided(
                decision=e.verdict, user=e.responder, at=e.at, comment=e.comment, channel=e.channel
            )
            await self._update(client, ref, view.request, outcome)

    async def _withdrawn(self, client: AsyncWebClient, ref: MessageRef, view: RequestView) -> None:
        """Take the buttons off a message whose request was withdrawn."""
        r = view.request
        try:
            await client.chat_update(
                channel=ref.channel,
                ts=ref.message_ts,
                text=WITHDRAWN,
                blocks=withdrawn.blocks(r.tool or "", r.arguments or {}, WITHDRAWN),
            )
        except _API_ERRORS as exc:
            log.warning("could not mark approval message %s withdrawn: %s", ref.message_ts, exc)

    async def _ephemeral(
        self, client: AsyncWebClient, ref: MessageRef, user: str, text: str
    ) -> None:
        try:
            await client.chat_postEphemeral(
                channel=ref.channel, user=user, text=text, thread_ts=ref.thread_ts
            )
        except _API_ERRORS as exc:
            log.warning("could not tell %s: %s (%s)", user, text, exc)

    async def _open(
        self,
        client: AsyncWebClient,
        trigger_id: str | None,
        modal: dict[str, Any],
        ref: MessageRef,
        user: str,
    ) -> None:
        try:
            await client.views_open(trigger_id=trigger_id or "", view=modal)
        except _API_ERRORS as exc:
            log.warning("could not open the reject modal: %s", exc)
            await self._ephemeral(client, ref, user, "Could not open the form; please try again.")


def _shown(record: RequestRecord, extra: dict[str, Any]) -> str | None:
    """What the decided message says beside who and when: the edit, the grant."""
    said = []
    if extra.get("arguments"):
        after = extra["arguments"]
        fields = changed(record.arguments or {}, after)
        said.append("edited: " + ", ".join(f"{f}={after.get(f)!r}" for f in fields))
    if extra.get("grant"):
        said.append(f"for the rest of this {extra['grant']}")
    return "; ".join(said) or None


_SLACK_USER = re.compile(r"\bslack:([UW][A-Z0-9]{2,})\b")


def _late_text(view: RequestView) -> str:
    """The late reply as Slack shows it: escaped, a Slack user who decided as a mention
    (which Slack renders with their name; an ephemeral note pings nobody)."""
    return _SLACK_USER.sub(r"<@\1>", escape(late_reply(view)))


async def _logged(job: Coroutine[Any, Any, None]) -> None:
    try:
        await job
    except Exception:
        log.exception("a call back to Slack failed")
