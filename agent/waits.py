"""The run loop's side of waiting: start a long-running call or a handoff, take its result
when it comes, cancel a thread (and its children). Mixed into ``agent.runner.Run``.

Everything here happens under the thread's lease. The call is opened in store.calls (and
recorded ``started`` in the ledger) before anything leaves the process, so its result is
taken once, whenever it arrives; a handoff's child thread is created by one idempotent
script, keyed by the call id, so a retried run never starts a second child.
"""

from __future__ import annotations

from functools import cached_property
from typing import assert_never

from pydantic import BaseModel

from agent.contact import Contact
from agent.handoff import CHANNEL, Handoff, to_parent
from agent.longrun import CallContext
from agent.tools import Agent, Tool
from agent.waiting import Cancel, FinishCall, waiting_on
from model.events import (
    AgentStep,
    CallDue,
    CallReported,
    Cancelled,
    CancelRequested,
    Event,
    ToolError,
    ToolResult,
    ToolStarted,
    UserMessage,
)
from model.ids import thread_id_for
from model.records import ParentLink, Status
from store import calls
from store.calls import Calls
from store.threads import Lease, NewThread, ThreadStore

RESULT_URL_SLACK = 3600.0
"""A result URL stays valid this long past the call's timeout (clocks differ, queues lag)."""
RESULT_URL_UNTIMED = 7 * 24 * 3600.0
"""How long the URL of a call with no timeout is valid."""
TOOL_OUTPUT_LIMIT = 2000


class Waits:
    """Needs what ``Run`` has: the lease, the store, the buffered writes."""

    lease: Lease
    store: ThreadStore
    agent: Agent
    contact: Contact
    events: list[Event]
    ledger: dict[str, str]
    _ledger_buffer: dict[str, str]
    errors: int
    result_base: str

    @cached_property
    def calls(self) -> Calls:
        # Made on first use: most runs open or close no call, and making the client registers
        # (hashes) its three scripts, a few percent of a short run's CPU.
        return Calls(self.store.redis)

    def _append(self, *events: Event) -> None:
        raise NotImplementedError  # Run's

    async def _flush(
        self, status: Status = "running", *, release: bool = False, merge: bool = True
    ) -> bool:
        raise NotImplementedError

    def _count_error(self, error: str) -> Status:
        raise NotImplementedError

    def _mark(self, call_id: str, value: str) -> None:
        self.ledger[call_id] = self._ledger_buffer[call_id] = value

    async def _open_call(self, tool: Tool, call_id: str, child: str | None = None) -> CallContext:
        """Record the call as started and waiting for a result; where the result goes."""
        self._mark(call_id, "started")
        await self.calls.open(self.lease, call_id, tool.name, child)
        await self._flush()
        valid = (tool.timeout or RESULT_URL_UNTIMED) + RESULT_URL_SLACK
        query = await self.calls.signed_query(call_id, valid)
        return CallContext(call_id, f"{self.result_base}/v1/calls/{call_id}/result?{query}")

    def _started(self, tool: Tool, call_id: str, external_id: str, agent: str | None) -> Status:
        timeout = None if agent else tool.timeout
        self._append(
            ToolStarted(
                call_id=call_id,
                tool=tool.name,
                external_id=external_id,
                timeout=timeout,
                agent=agent,
                withdraw_on_message=bool(agent) and self.contact.withdraw_on_message,
            )
        )
        if timeout:
            self.contact.schedule(calls.timer_id(call_id), timeout)
        return "waiting"

    async def _hand_off(
        self, tool: Tool, handoff: Handoff, call_id: str, args: BaseModel
    ) -> Status:
        """Start a child thread on ``handoff.agent``; this thread waits for its answer."""
        parent = self.lease.meta.parent
        depth = (parent.depth if parent else 0) + 1
        error: str | None = None
        text = ""
        if depth > handoff.max_depth:
            error = (
                f"handoff to {handoff.agent} refused: this thread is {depth - 1} handoff(s) "
                f"deep and the limit is {handoff.max_depth}"
            )
        else:
            try:
                text = handoff.render(args.model_dump(mode="json"))
            except ValueError as exc:
                error = str(exc)
        if error is not None:
            self._append(ToolError(call_id=call_id, tool=tool.name, error=error))
            return self._count_error(error)
        child = thread_id_for(CHANNEL, call_id)
        await self._open_call(tool, call_id, child)
        tid = self.lease.thread_id
        await self.store.append_inbound(
            child,
            UserMessage(channel=CHANNEL, sender=self.lease.meta.agent, text=text),
            dedupe=f"handoff:{call_id}",
            create=NewThread(
                agent=handoff.agent,
                origin=self.lease.meta.origin,
                parent=ParentLink(thread_id=tid, call_id=call_id, depth=depth),
            ),
        )
        return self._started(tool, call_id, child, handoff.agent)

    def _finish_call(self, action: FinishCall) -> Status:
        """A started call's result, error or timeout becomes its ToolResult / ToolError."""
        started, report = action.started, action.report
        self._mark(started.call_id, "done")
        name, cid = started.tool, started.call_id
        match report:
            case CallReported(outcome="result", text=text):
                self._append(ToolResult(call_id=cid, tool=name, output=text[:TOOL_OUTPUT_LIMIT]))
                self.errors = 0
                return "running"
            case CallReported(text=text):
                error = text[:TOOL_OUTPUT_LIMIT]
            case CallDue():
                error = f"timed out: no result within {started.timeout or 0:g}s of starting"
            case _:
                assert_never(report)
        self._append(ToolError(call_id=cid, tool=name, error=error))
        return self._count_error(error)

    async def _cancel(self, action: Cancel) -> Status:
        """Withdraw pending requests, drop started calls, cancel children; then rest."""
        request = action.request
        tid = self.lease.thread_id
        why = f"cancelled by {request.by}" + (f": {request.reason}" if request.reason else "")
        view = await self.store.thread(tid)
        for pending in (r.request for r in view.requests if r.status == "pending"):
            await self.store.withdraw(self.lease, pending.request_id)
            if pending.call_id and pending.tool:
                self._settle(pending.call_id, pending.tool, f"withdrawn: {why}")
        for started in waiting_on(self.events):
            await self.calls.close(self.lease, started.call_id)
            self._mark(started.call_id, "done")
            self._settle(started.call_id, started.tool, f"{why} before its result came")
            if started.agent:  # the child stops too
                await self._cancel_child(started, tid, "its parent was cancelled")
        self._append(Cancelled(text=why))
        link = self.lease.meta.parent
        if request.by.startswith("thread:"):
            pass  # cancelled by its parent, which tells its own people
        elif link is not None:  # the parent hears it as its call's error, and goes on
            self.contact.send("notice", f"{self.agent.name} was {why}", to_parent(link))
        else:
            self.contact.send("notice", f"This thread was {why}.")
        return "cancelled"

    async def _withdraw_handoff(self, started: ToolStarted) -> None:
        """The ask changed while a child worked on it: its call is withdrawn (a late answer
        from the child is refused), the child is cancelled, the model decides again."""
        tid = self.lease.thread_id
        await self.calls.close(self.lease, started.call_id)
        self._mark(started.call_id, "done")
        self._settle(started.call_id, started.tool, "withdrawn: a new message changed the ask")
        await self._cancel_child(started, tid, "its parent's ask changed")

    async def _cancel_child(self, started: ToolStarted, tid: str, reason: str) -> None:
        # Idempotent: the child's seen set has the key, so a retried run asks once.
        await self.store.append_inbound(
            started.external_id,
            CancelRequested(by=f"thread:{tid}", reason=reason),
            dedupe=f"cancel:{started.call_id}",
        )

    def _start_again(self, step: AgentStep | None) -> bool:
        """A handoff cut off before its child was recorded on this thread: dispatch it again
        rather than ask a human. Safe, as the child's id comes from the call id and its first
        message is deduplicated: a second start finds the child the first one made."""
        tool = self.agent.tools.get(step.intent) if step else None
        if step is None or step.call_id is None or tool is None or tool.handoff is None:
            return False
        del self.ledger[step.call_id]
        return True

    def _settle(self, call_id: str, tool: str, output: str) -> None:
        self._append(ToolResult(call_id=call_id, tool=tool, output=output, outcome="withdrawn"))


def started_calls(events: list[Event]) -> dict[str, ToolStarted]:
    """Call ids that started and wait for a result: not interrupted, whatever the ledger says."""
    return {e.call_id: e for e in events if isinstance(e, ToolStarted)}
