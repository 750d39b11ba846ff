"""Contacting a human is a tool call: what a run says to people, as records for its next commit.

A question or an approval becomes a request (answerable once, by whom the tool allows, until
its deadline) and outbox items that carry it to the right people: approvals to the tool's
``notify`` addresses (or the thread's own channel), everything else to where the thread
started.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, assert_never

from agent import briefs
from agent.tools import Address, Tool
from model.events import (
    ApprovalRequest,
    ApprovalStage,
    Event,
    HumanRequest,
    Question,
    UserMessage,
    arguments_hash,
    utcnow,
)
from model.ids import new_id, request_id_for
from model.records import (
    ApprovalBrief,
    Origin,
    OutboxItem,
    OutboxKind,
    RequestRecord,
    approval_text,
    call_text,
)
from store.timers import timer_id


@dataclass
class Contact:
    thread_id: str
    origin: Origin
    request_timeout: float | None = None
    requests: list[RequestRecord] = field(default_factory=list)
    outbox: list[OutboxItem] = field(default_factory=list)
    people: Mapping[str, str] = field(default_factory=dict)
    withdraw_on_message: bool = False
    timers: dict[str, int] = field(default_factory=dict)
    """Timer id -> due (epoch ms): scheduled with the next commit (store.timers)."""
    agent: str = ""
    """The agent's name, as approval messages show it."""

    def schedule(self, timer: str, after: float) -> None:
        self.timers[timer] = int((utcnow() + timedelta(seconds=after)).timestamp() * 1000)

    def take_timers(self) -> dict[str, int]:
        taken, self.timers = self.timers, {}
        return taken

    def take(self) -> tuple[list[RequestRecord], list[OutboxItem]]:
        """What was said since the last commit (and forget it: the commit owns it now)."""
        taken = self.requests, self.outbox
        self.requests, self.outbox = [], []
        return taken

    def send(self, kind: OutboxKind, text: str, to: Origin | None = None, **extra: Any) -> None:
        """One message to ``to``; without one, to the origin and each of its copies."""
        for place in [to] if to is not None else self.origin.places():
            self.outbox.append(
                OutboxItem(
                    outbox_id=new_id("out"),
                    thread_id=self.thread_id,
                    kind=kind,
                    text=text,
                    to=place,
                    **extra,
                )
            )

    def question(self, text: str) -> HumanRequest:
        rid = request_id_for(self.thread_id)
        self.requests.append(
            RequestRecord(
                request_id=rid,
                thread_id=self.thread_id,
                kind="question",
                text=text,
                deadline=self._deadline(),
            )
        )
        self.send("question", text, request_id=rid)
        return Question(request_id=rid, text=text)

    def approval(
        self,
        tool: Tool,
        call_id: str,
        arguments: dict[str, Any],
        requester: str | None = None,
        said: UserMessage | None = None,
    ) -> ApprovalRequest:
        """``requester``: ``channel:address`` of whose message (``said``) led to the call."""
        rid = request_id_for(self.thread_id)
        policy = tool.approval
        shown = call_text(tool.name, arguments)
        text = approval_text(shown)
        # What an approver may do beside approve / reject: edit some arguments, grant a scope.
        offers: dict[str, Any] = {
            "editable": list(policy.editable) if policy else [],
            "grants": list(policy.grants) if policy else [],
        }
        if tool.approval_note:
            text += f"\n{tool.approval_note}"
        self.requests.append(
            RequestRecord(
                request_id=rid,
                thread_id=self.thread_id,
                kind="approval",
                text=text,
                tool=tool.name,
                arguments=arguments,
                call_id=call_id,
                approvers=[str(a) for a in tool.approvers],
                arguments_hash=arguments_hash(arguments),
                approvals_needed=policy.quorum if policy else 1,
                people=dict(self.people),
                requester=self.people.get(requester, requester) if requester else None,
                self_approval=policy.self_approval if policy else True,
                deadline=self._deadline(policy.deadline if policy else None),
                **offers,
            )
        )
        route = policy.route if policy else []
        stages = [ApprovalStage(notify=s.notify, after=s.after) for s in route]
        first = [Address.parse(a) for a in stages[0].notify] if stages else tool.notify
        targets = [Origin(channel=a.channel, address=a.address) for a in first]
        targets = targets or self.origin.places()
        for n, stage in enumerate(stages[1:], start=1):
            self.schedule(timer_id(rid, "stage", n), stage.after)
        if policy and policy.remind_every:
            self.schedule(timer_id(rid, "remind", 1), policy.remind_every)
        brief = briefs.brief(
            self.agent,
            requester=self.people.get(requester, requester) if requester else None,
            said=said,
            needed=policy.quorum if policy else 1,
            deadline=self.requests[-1].deadline,
            mention=self._mentions([t.target for t in targets], tool),
        )
        for target in targets:
            self.send(
                "approval",
                text,
                target,
                request_id=rid,
                tool=tool.name,
                arguments=arguments,
                **offers,
                brief=brief,
            )
        # The requester hears that the approval went elsewhere (another channel or person).
        if tool.notify and self.origin.target not in {t.target for t in targets}:
            who = ", ".join(str(a) for a in tool.notify)
            self.send("notice", f"Waiting for approval from {who}: {shown}")
        return ApprovalRequest(
            request_id=rid,
            text=text,
            tool=tool.name,
            arguments=arguments,
            call_id=call_id,
            notify=[str(a) for a in tool.notify],
            offered=[t.target for t in targets],
            stages=stages,
            remind_every=policy.remind_every if policy else None,
            on_deadline=policy.on_deadline if policy else "expire",
            quorum=policy.quorum if policy else 1,
            withdraw_on_message=self.withdraw_on_message,
            **offers,
        )

    @staticmethod
    def approvers(tool: Tool | None) -> list[str]:
        return [str(a) for a in tool.approvers] if tool else []

    def brief_of(
        self, request: ApprovalRequest, events: list[Event], tool: Tool | None, asked: list[str]
    ) -> ApprovalBrief:
        """The brief of an approval asked again (a later stage, a reminder, a reroute)."""
        said = briefs.asked_by(events, request.request_id)
        requester = f"{said.channel}:{said.sender}" if said else None
        policy = tool.approval if tool else None
        seconds = (policy.deadline if policy else None) or self.request_timeout
        return briefs.brief(
            self.agent,
            requester=self.people.get(requester, requester) if requester else None,
            said=said,
            needed=request.quorum,
            given=briefs.approvals_given(events, request.request_id),
            deadline=request.at + timedelta(seconds=seconds) if seconds else None,
            mention=self._mentions(asked, tool),
        )

    def _mentions(self, asked: list[str], tool: Tool | None) -> list[str]:
        # Asked on the thread itself, the origin is whoever wrote: the approvers are meant.
        asked = [a for a in asked if a != self.origin.target]
        return briefs.mentions(asked, self.people, self.approvers(tool))

    def reoffer(
        self, request: HumanRequest, to: Origin, note: str, brief: ApprovalBrief | None = None
    ) -> None:
        """Offer a pending request somewhere else, saying why (its first place failed)."""
        text = f"{request.text}\n({note})"
        match request:
            case ApprovalRequest(tool=tool, arguments=arguments):
                self.send(
                    "approval",
                    text,
                    to,
                    request_id=request.request_id,
                    tool=tool,
                    arguments=arguments,
                    editable=request.editable,
                    grants=request.grants,
                    brief=brief,
                )
            case Question():
                self.send("question", text, to, request_id=request.request_id)
            case _:
                assert_never(request)

    def _deadline(self, seconds: float | None = None) -> datetime | None:
        seconds = seconds or self.request_timeout
        if not seconds:
            return None
        return utcnow() + timedelta(seconds=seconds)
