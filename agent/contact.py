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

from agent.tools import Address, Tool
from model.events import (
    ApprovalRequest,
    ApprovalStage,
    HumanRequest,
    Question,
    arguments_hash,
    utcnow,
)
from model.ids import new_id
from model.records import Origin, OutboxItem, OutboxKind, RequestRecord
from store.timers import timer_id


def call_text(tool: str, arguments: Mapping[str, Any]) -> str:
    """``deploy(tag='v1.2.3', env='production')``: how a call reads to a human."""
    args = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return f"{tool}({args})"


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
        self.outbox.append(
            OutboxItem(
                outbox_id=new_id("out"),
                thread_id=self.thread_id,
                kind=kind,
                text=text,
                to=to or self.origin,
                **extra,
            )
        )

    def question(self, text: str) -> HumanRequest:
        rid = new_id("rq")
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
    ) -> ApprovalRequest:
        """``requester``: ``channel:address`` of whose message led to the call."""
        rid = new_id("rq")
        policy = tool.approval
        shown = call_text(tool.name, arguments)
        text = f"Approval needed: {shown}"
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
            )
        )
        route = policy.route if policy else []
        stages = [ApprovalStage(notify=s.notify, after=s.after) for s in route]
        first = [Address.parse(a) for a in stages[0].notify] if stages else tool.notify
        targets = [Origin(channel=a.channel, address=a.address) for a in first] or [self.origin]
        for n, stage in enumerate(stages[1:], start=1):
            self.schedule(timer_id(rid, "stage", n), stage.after)
        if policy and policy.remind_every:
            self.schedule(timer_id(rid, "remind", 1), policy.remind_every)
        for target in targets:
            self.send("approval", text, target, request_id=rid, tool=tool.name, arguments=arguments)
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
        )

    def reoffer(self, request: HumanRequest, to: Origin, note: str) -> None:
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
