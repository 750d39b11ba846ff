"""One run of one thread: decide, dispatch, repeat, a bounded number of times, then pause.

Deterministic code owns the control flow. The model only proposes the next step; tools that
need approval become approval requests; side-effect tools are recorded in the ledger before
they run; errors are counted and, three in a row, handed to a human.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, assert_never

from agent import prompts
from agent.contact import Contact, call_text
from agent.errors import LLMFailed, ShuttingDown, ToolFailed
from agent.escalation import Escalation, OfferStage, Remind, TimerMoot
from agent.llm import LLM
from agent.reducer import (
    Decide,
    Dispatch,
    Idle,
    RecordExpiry,
    RecordRejection,
    RunApproved,
    Withdraw,
    next_step,
    plan,
    resting_status,
)
from agent.report import RunReport
from agent.reroute import Moot, NowhereLeft, OfferElsewhere, Reroute, StillOffered
from agent.steps import ASK, DONE
from agent.tools import Agent, Tool
from model.events import (
    AgentStep,
    ApprovalRequest,
    Event,
    FinalAnswer,
    LLMError,
    Offered,
    Rerouted,
    SystemNote,
    ToolError,
    ToolResult,
    UserMessage,
)
from model.ids import new_id
from model.records import Origin, Status
from store import keys
from store.streams import Entry, WorkStream
from store.threads import Lease, ThreadStore
from store.timers import timer_id
from telemetry import metrics

log = logging.getLogger("switchboard.run")

MAX_CONSECUTIVE_ERRORS = 3
TOOL_OUTPUT_LIMIT = 2000


@dataclass(frozen=True)
class RunSettings:
    lease_ttl_ms: int = 30_000
    llm_retry_delay: float = 1.0
    """Base delay before retrying a rate-limited or unavailable model (doubles each time)."""


class Run:
    """Advances one leased thread until it pauses. Create one per lease."""

    def __init__(
        self,
        lease: Lease,
        agent: Agent,
        llm: LLM,
        store: ThreadStore,
        settings: RunSettings,
        ack: tuple[WorkStream, Entry] | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.stop = stop
        """Set when the service stops: no further step (model call, tool) starts."""
        self.lease = lease
        self.agent = prompts.for_thread(agent, lease.thread_id, lease.events)  # A/B, sticky
        self.llm = llm
        self.store = store
        self.settings = settings
        self.ack = ack
        self.events: list[Event] = list(lease.events)
        self.ledger: dict[str, str] = dict(lease.ledger)
        self.steps = lease.state.steps
        self.errors = lease.state.errors
        self._buffer: list[Event] = []
        self._ledger_buffer: dict[str, str] = {}
        self.contact = Contact(
            lease.thread_id,
            lease.meta.origin,
            agent.request_timeout,
            people=agent.people,
            withdraw_on_message=agent.on_new_message == "withdraw",
        )
        self.report = RunReport(agent)

    # ---- buffered writes ------------------------------------------------------------------
    def _append(self, *events: Event) -> None:
        self._buffer.extend(events)
        self.events.extend(events)
        self.report.appended(events)

    def _state(self, status: Status) -> dict[str, str | int]:
        return {keys.STATUS: status, keys.STEPS: self.steps, keys.ERRORS: self.errors}

    async def _flush(self, status: Status = "running", *, release: bool = False) -> bool:
        """Commit what is buffered; merge whatever arrived meanwhile. True: lease released."""
        requests, outbox = self.contact.take()
        result = await self.store.commit(
            self.lease,
            ttl_ms=self.settings.lease_ttl_ms,
            events=self._buffer,
            state=self._state(status),
            ledger=self._ledger_buffer,
            requests=requests,
            outbox=outbox,
            timers=self.contact.take_timers(),
            release=release,
            ack=self.ack if release else None,
        )
        self._buffer, self._ledger_buffer = [], {}
        if result.merged:
            # Input that arrived mid-run is now in the log; the next decision sees it.
            self.events.extend(result.merged)
            count = sum(isinstance(e, UserMessage) for e in result.merged)
            if count:
                self._append(
                    SystemNote(
                        kind="merged_messages",
                        text=f"{count} message(s) arrived while the agent was working",
                    )
                )
        return result.released

    # ---- the loop -------------------------------------------------------------------------
    async def go(self) -> None:
        if self.lease.unpublished:
            await self.store.publish(self.lease.thread_id, self.lease.unpublished)
        status: Status = "awaiting_human" if self._recover_unknown_outcomes() else "running"
        decided = 0
        while True:
            if status == "running" and self.stop is not None and self.stop.is_set():
                raise ShuttingDown(self.lease.thread_id)  # all committed: nothing is lost
            if status == "running":
                action = plan(self.events, self.ledger, self.lease.meta.origin.target)
                match action:
                    case Idle():
                        status = resting_status(self.events)
                    case OfferElsewhere() | StillOffered() | NowhereLeft() | Moot():
                        self._reroute(action)
                    case OfferStage() | Remind() | TimerMoot():
                        self._escalate_approval(action)
                    case RunApproved(request=request):
                        approved = self.agent.tools.get(request.tool)
                        status = (
                            await self._run_tool(approved, request.call_id, request.arguments)
                            if approved
                            else self._unavailable(request)
                        )
                    case RecordRejection():
                        self._record_rejection(action)
                    case RecordExpiry(request=request):
                        rejected = request.on_deadline == "reject"
                        self._append(
                            ToolResult(
                                call_id=request.call_id,
                                tool=request.tool,
                                output=(
                                    "rejected: nobody approved before the deadline"
                                    if rejected
                                    else "nobody decided before the deadline"
                                )
                                + "; the call did not run",
                                outcome="rejected" if rejected else "expired",
                            )
                        )
                    case Withdraw(request=request):
                        await self._withdraw(request)
                    case Dispatch(step=step):
                        status = await self._dispatch(step)
                    case Decide() if decided >= self.agent.max_steps:
                        status = self._step_limit()
                    case Decide():
                        decided += 1
                        status = await self._decide()
                    case _:
                        assert_never(action)
            if status == "running":
                await self._flush()
            elif await self._flush(status, release=True):
                return
            else:
                status = "running"  # a human wrote as we paused: go on with it

    def _reroute(self, action: Reroute) -> None:
        """Answer one failed delivery: offer its request elsewhere, or escalate."""
        failure = action.failure
        rid = failure.request_id
        what = f"{failure.message} {rid}" if rid else f"the {failure.message} message"
        lost = "may not have reached" if failure.outcome == "unknown" else "could not reach"
        why = f"{what.capitalize()} {lost} {failure.target} ({failure.reason})"
        settled = Rerouted(outbox_id=failure.outbox_id, request_id=rid, text=why)
        match action:
            case OfferElsewhere(request=request, to=to):
                origin = self.lease.meta.origin
                target = origin if to == origin.target else Origin.of(to)
                note = f"it {lost} {failure.target}: {failure.reason}"
                if isinstance(request, ApprovalRequest):
                    tool = self.agent.tools.get(request.tool)
                    who = ", ".join(str(a) for a in tool.approvers) if tool else ""
                    note += f"; who may approve: {who or 'anyone'}"
                self.contact.reoffer(request, target, note)
                metrics.REROUTES.labels(failure.channel).inc()
                log.info("%s rerouted from %s to %s", failure.message, failure.target, to)
                self._append(
                    settled.model_copy(update={"to": to, "text": f"{why}; offered at {to}."})
                )
            case StillOffered(at=at):
                self._append(
                    settled.model_copy(update={"text": f"{why}; still offered at {', '.join(at)}."})
                )
            case NowhereLeft():
                text = f"{why}; nowhere left to offer it: a person must step in."
                self._append(
                    settled.model_copy(update={"text": text}),
                    SystemNote(kind="escalation", text=text, request_id=rid),
                )
            case Moot():
                self._append(settled.model_copy(update={"text": f"{why}; no longer pending."}))
            case _:
                assert_never(action)

    def _escalate_approval(self, action: Escalation) -> None:
        """Answer one due timer: ask the next stage, remind the current one, or nobody."""
        due = action.due
        settled = Offered(timer=due.timer, request_id=due.request_id, kind=due.kind, text="")
        match action:
            case OfferStage(request=request, to=to):
                note = f"stage {due.n + 1}: nobody has decided yet"
                what = f"stage {due.n + 1} of the route asked {', '.join(to) or 'nobody new'}"
            case Remind(request=request, to=to):
                note = f"reminder {due.n}: still waiting for a decision"
                what = f"reminder {due.n} sent to {', '.join(to)}"
                if request.remind_every:
                    self.contact.schedule(
                        timer_id(request.request_id, "remind", due.n + 1), request.remind_every
                    )
            case TimerMoot():
                self._append(settled.model_copy(update={"text": "no longer pending"}))
                return
            case _:
                assert_never(action)
        origin = self.lease.meta.origin
        for address in to:
            channel, _, who = address.partition(":")
            target = origin if address == origin.target else Origin(channel=channel, address=who)
            self.contact.reoffer(request, target, note)
        log.info("approval %s: %s", request.request_id, what)
        self._append(settled.model_copy(update={"to": list(to), "text": what}))

    async def _withdraw(self, request: ApprovalRequest) -> None:
        """Withdraw a pending approval a human message overtook; the model decides again."""
        if not await self.store.withdraw(self.lease, request.request_id):
            # Decided just before the message arrived: the decision stands, and is merged
            # with the next commit (it is already in the inbox).
            await self._flush()
            return
        self._append(
            ToolResult(
                call_id=request.call_id,
                tool=request.tool,
                output=(
                    "withdrawn: a new message arrived before anyone decided; "
                    "the call did not run (ask again if it is still wanted)"
                ),
                outcome="withdrawn",
            )
        )

    def _record_rejection(self, action: RecordRejection) -> None:
        reason = action.response.comment or "no reason given"
        self._append(
            ToolResult(
                call_id=action.request.call_id,
                tool=action.request.tool,
                output=f"rejected by {action.response.responder}: {reason}",
                outcome="rejected",
            )
        )
        self.errors = 0

    async def _decide(self) -> Status:
        try:
            decision = await next_step(self.agent, self.events, self.llm)
        except LLMFailed as exc:
            self._append(LLMError(kind=exc.kind, error=exc.error))
            if exc.kind == "not_configured":
                return self._escalate(exc.error, force=True)
            status = self._count_error(exc.error)
            if status == "running" and exc.kind in ("rate_limited", "unavailable", "timeout"):
                await self._flush()
                await asyncio.sleep(self.settings.llm_retry_delay * 2.0 ** (self.errors - 1))
            return status
        self.steps += 1
        call_id = new_id("call") if decision.intent in self.agent.tools else None
        step = AgentStep(
            intent=decision.intent,
            arguments=decision.arguments,
            prompt=self.agent.prompt,
            call_id=call_id,
            **decision.usage_fields(),
        )
        self._append(step)
        return await self._dispatch(step)

    async def _dispatch(self, step: AgentStep) -> Status:
        if step.intent == DONE:
            text = str(step.arguments.get("message", ""))
            self._append(FinalAnswer(text=text))
            self.contact.send("final", text)
            self.errors = 0
            return "done"
        if step.intent == ASK:
            text = str(step.arguments.get("message", ""))
            self._ask(text)
            self.errors = 0
            return "awaiting_human"
        tool = self.agent.tools.get(step.intent)
        if tool is None or step.call_id is None:
            self._append(ToolError(tool=step.intent, error="no such tool"))
            return self._count_error("no such tool")
        try:
            args = tool.validate(step.arguments)
        except ToolFailed as exc:
            self._append(ToolError(call_id=step.call_id, tool=tool.name, error=exc.error))
            return self._count_error(exc.error)
        if tool.needs_approval:
            asked_by = next(
                (
                    f"{e.channel}:{e.sender}"
                    for e in reversed(self.events)
                    if isinstance(e, UserMessage)
                ),
                None,
            )
            arguments = args.model_dump(mode="json")
            self._append(self.contact.approval(tool, step.call_id, arguments, asked_by))
            return "awaiting_human"
        return await self._run_tool(tool, step.call_id, step.arguments)

    async def _run_tool(self, tool: Tool, call_id: str, arguments: Mapping[str, Any]) -> Status:
        try:
            args = tool.validate(arguments)
        except ToolFailed as exc:
            self._append(ToolError(call_id=call_id, tool=tool.name, error=exc.error))
            return self._count_error(exc.error)
        if tool.side_effects:
            # Intent first, durably: after a crash, a call found 'started' goes to a human.
            self.ledger[call_id] = self._ledger_buffer[call_id] = "started"
            await self._flush()
        try:
            output = await tool.call(args, call_id)
        except ToolFailed as exc:
            error: str | None = exc.error
        except Exception as exc:  # a tool's own bug is the thread's error, not the worker's
            log.warning("tool %s failed on %s", tool.name, self.lease.thread_id, exc_info=True)
            error = f"{type(exc).__name__}: {exc}"[:300]
        else:
            error = None
        if tool.side_effects:
            self.ledger[call_id] = self._ledger_buffer[call_id] = "done"
        if error is not None:
            self._append(ToolError(call_id=call_id, tool=tool.name, error=error))
            return self._count_error(error)
        self._append(ToolResult(call_id=call_id, tool=tool.name, output=output[:TOOL_OUTPUT_LIMIT]))
        self.errors = 0
        return "running"

    def _unavailable(self, request: ApprovalRequest) -> Status:
        """An approved call whose tool is gone (its MCP server is down or no longer lists it)."""
        error = "the tool is not available now (is its MCP server down?); the call did not run"
        self._append(ToolError(call_id=request.call_id, tool=request.tool, error=error))
        return self._count_error(error)

    # ---- pauses -----------------------------------------------------------------------
    def _ask(self, text: str) -> None:
        self._append(self.contact.question(text))

    def _count_error(self, error: str) -> Status:
        self.errors += 1
        if self.errors >= MAX_CONSECUTIVE_ERRORS:
            return self._escalate(error)
        return "running"

    def _escalate(self, error: str, *, force: bool = False) -> Status:
        if force:  # not something the model can work around: say what must change
            self._append(SystemNote(kind="escalation", text=error))
            self._ask(f"I cannot work on this yet: {error}. Reply here once that is fixed.")
            self.errors = 0
            return "awaiting_human"
        why = f"{self.errors} errors in a row, the last: {error}"
        self._append(SystemNote(kind="escalation", text=why))
        self._ask(f"I am stuck ({why}). How should I go on?")
        self.errors = 0
        return "awaiting_human"

    def _step_limit(self) -> Status:
        text = (
            f"I stopped after {self.agent.max_steps} steps without finishing. "
            "Reply to let me go on."
        )
        self._append(SystemNote(kind="step_limit", text=text))
        self.contact.send("notice", text)
        return "awaiting_human"

    def _recover_unknown_outcomes(self) -> bool:
        """Calls recorded as started but never finished: a worker died mid-call. Ask, don't redo."""
        unknown = [cid for cid, s in self.ledger.items() if s == "started"]
        if not unknown:
            return False
        calls = {e.call_id: e for e in self.events if isinstance(e, AgentStep) and e.call_id}
        for cid in unknown:
            step = calls.get(cid)
            name = step.intent if step else "a tool"
            shown = call_text(name, step.arguments) if step else name
            self.ledger[cid] = self._ledger_buffer[cid] = "unknown"
            self._append(
                ToolResult(
                    call_id=cid,
                    tool=name,
                    outcome="unknown",
                    output="the worker running this call stopped before it reported back",
                ),
                SystemNote(kind="recovered", text=f"{shown} was interrupted; outcome unknown"),
            )
            self._ask(
                f"I started {shown}, but the worker running it stopped before it reported back. "
                "Please check whether it took effect and tell me.",
            )
        return True
