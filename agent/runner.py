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

from agent import edits, grants, longrun, prompts, summaries
from agent.briefs import WITHDRAWN, asked_by, offered_at
from agent.contact import Contact
from agent.errors import LLMFailed, ShuttingDown, ToolFailed
from agent.escalation import Escalation, OfferStage, Remind, TimerMoot
from agent.handoff import to_parent
from agent.llm import LLM
from agent.reducer import (
    Decide,
    Dispatch,
    Idle,
    RecordExpiry,
    RecordRejection,
    RunApproved,
    RunGranted,
    Withdraw,
    next_step,
    plan,
    resting_status,
)
from agent.report import RunReport
from agent.reroute import Moot, NowhereLeft, OfferElsewhere, Reroute, StillOffered
from agent.resume import Resume
from agent.steps import ASK, DONE
from agent.tools import Agent, Tool
from agent.waiting import Cancel, FinishCall, WithdrawHandoff
from agent.waits import Waits, started_calls
from model.events import (
    AgentStep,
    ApprovalRequest,
    Approved,
    Event,
    FinalAnswer,
    Granted,
    LLMError,
    Offered,
    Rerouted,
    SystemNote,
    ToolError,
    ToolResult,
    UserMessage,
)
from model.ids import new_id
from model.records import Origin, Status, call_text
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
    result_base: str = "http://127.0.0.1:8000"
    """Where a long-running tool's signed result URL points (``PUBLIC_BASE_URL``)."""


class Run(Waits):
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
        self.resume = Resume.of(lease)  # the snapshot's carried events, then the tail
        self._configured = agent
        self.agent = prompts.for_thread(agent, lease.thread_id, self.resume.events)  # A/B
        self.llm = llm
        self.store = store
        self.result_base = settings.result_base.rstrip("/")
        self.settings = settings
        self.ack = ack
        self.events: list[Event] = list(self.resume.events)
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
            agent=agent.name,
        )
        self.report = RunReport(agent)

    # ---- buffered writes ------------------------------------------------------------------
    def _append(self, *events: Event) -> None:
        self._buffer.extend(events)
        self.events.extend(events)
        self.report.appended(events)

    def _state(self, status: Status) -> dict[str, str | int]:
        return {keys.STATUS: status, keys.STEPS: self.steps, keys.ERRORS: self.errors}

    async def _flush(
        self, status: Status = "running", *, release: bool = False, merge: bool = True
    ) -> bool:
        """Commit what is buffered; merge whatever arrived meanwhile (unless ``merge`` is
        False: nothing decides before the next commit, which merges). True: lease released."""
        if release:  # summarize = "model": lines for the turns the snapshot moves past
            for turn, events in summaries.due(self.agent, self.resume.snapshot, self.events):
                self._append(await summaries.summarize(self.agent, self.llm, turn, events))
        requests, outbox = self.contact.take()
        snap = self.resume.after(self.agent, self.events) if release else None
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
            merge=merge,
            ack=self.ack if release else None,
            snapshot=snap,
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
        if not self.resume.usable(self.agent):  # the snapshot cannot serve: read the log
            self.resume = await self.resume.load(self.store, self.lease.thread_id)
            self.events = list(self.resume.events)
            self.agent = prompts.for_thread(self._configured, self.lease.thread_id, self.events)
        if self.lease.unpublished:
            await self.store.publish(self.lease.thread_id, self.lease.unpublished)
        status: Status = "awaiting_human" if self._recover_unknown_outcomes() else "running"
        decided = 0
        while True:
            if status == "running" and self.stop is not None and self.stop.is_set():
                raise ShuttingDown(self.lease.thread_id)  # all committed: nothing is lost
            if status == "running":
                origin = self.lease.meta.origin
                action = plan(self.events, self.ledger, origin.target, origin.copies)
                match action:
                    case FinishCall():
                        status = self._finish_call(action)
                    case Cancel():
                        status = await self._cancel(action)
                    case WithdrawHandoff(started=started):
                        await self._withdraw_handoff(started)
                    case Idle():
                        status = resting_status(self.events)
                    case OfferElsewhere() | StillOffered() | NowhereLeft() | Moot():
                        self._reroute(action)
                    case OfferStage() | Remind() | TimerMoot():
                        self._escalate_approval(action)
                    case RunApproved(request=request, response=response, by=by):
                        approved = self.agent.tools.get(request.tool)
                        if approved is None:
                            status = self._unavailable(request.call_id, request.tool)
                        else:
                            self._record_grant(request, response, by)
                            status = await self._run_tool(
                                approved,
                                request.call_id,
                                edits.approved_call(request, response),
                                note=edits.edit_note(request, response),
                            )
                    case RunGranted(used=used, step=step):
                        granted = self.agent.tools.get(used.tool)
                        status = (
                            await self._run_tool(granted, used.call_id, step.arguments)
                            if granted
                            else self._unavailable(used.call_id, used.tool)
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
                brief = None
                if isinstance(request, ApprovalRequest):
                    tool = self.agent.tools.get(request.tool)
                    who = ", ".join(str(a) for a in tool.approvers) if tool else ""
                    note += f"; who may approve: {who or 'anyone'}"
                    brief = self.contact.brief_of(request, self.events, tool, [to])
                self.contact.reoffer(request, target, note, brief)
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
        tool = self.agent.tools.get(request.tool)
        brief = self.contact.brief_of(request, self.events, tool, list(to))
        for address in to:
            channel, _, who = address.partition(":")
            target = origin if address == origin.target else Origin(channel=channel, address=who)
            self.contact.reoffer(request, target, note, brief)
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
        self._unoffer(request)

    def _unoffer(self, request: ApprovalRequest) -> None:
        """Where the request was posted with buttons (Slack), its channel takes them away;
        SMS codes and email links read the request's status ("no longer pending")."""
        origin = self.lease.meta.origin
        offered = offered_at(request, self.events, origin.target)
        slack = next((a for a in offered if a.startswith("slack:")), None)
        if slack is not None:
            to = origin if slack == origin.target else Origin.of(slack)
            self.contact.send(
                "withdrawn",
                WITHDRAWN,
                to,
                request_id=request.request_id,
                tool=request.tool,
                arguments=request.arguments,
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
            shown = self.events[self.resume.skip :]
            decision = await next_step(self.agent, shown, self.llm, prior=self.resume.prior())
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
            link = self.lease.meta.parent  # a child's answer is its parent's tool result
            self.contact.send("final", text, to_parent(link) if link else None)
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
        if tool.needs_approval and (grant := grants.covering(self.events, tool)) is not None:
            arguments = args.model_dump(mode="json")
            self._append(grants.used(grant, step.call_id, arguments))
            return await self._run_tool(tool, step.call_id, arguments)
        if tool.needs_approval:
            said = asked_by(self.events)
            who = f"{said.channel}:{said.sender}" if said else None
            arguments = args.model_dump(mode="json")
            self._append(self.contact.approval(tool, step.call_id, arguments, who, said))
            return "awaiting_human"
        return await self._run_tool(tool, step.call_id, step.arguments)

    def _record_grant(
        self, request: ApprovalRequest, response: Approved, by: tuple[str, ...]
    ) -> None:
        """An approval "for this thread", now complete: the grant comes into force (once)."""
        if response.grant is None or response.grant not in request.grants:
            return
        if any(isinstance(e, Granted) and e.request_id == request.request_id for e in self.events):
            return  # recorded by a run that stopped before the call ran
        self._append(
            Granted(
                request_id=request.request_id, tool=request.tool, scope=response.grant, by=list(by)
            )
        )

    async def _run_tool(
        self,
        tool: Tool,
        call_id: str,
        arguments: Mapping[str, Any],
        note: str | None = None,
    ) -> Status:
        """``note``: what the model reads before the output (a human edited the call)."""
        try:
            args = tool.validate(arguments)
        except ToolFailed as exc:
            self._append(ToolError(call_id=call_id, tool=tool.name, error=exc.error))
            return self._count_error(exc.error)
        if tool.handoff is not None:
            return await self._hand_off(tool, tool.handoff, call_id, args)
        context = await self._open_call(tool, call_id) if tool.long_running else None
        if tool.side_effects and context is None:
            # Intent first, durably: after a crash, a call found 'started' goes to a human.
            self.ledger[call_id] = self._ledger_buffer[call_id] = "started"
            # No look at the inbox: the tool runs whatever arrived, and the commit of its
            # result merges it before the next decision.
            await self._flush(merge=False)
        try:
            if context is None:
                output = await tool.call(args, call_id)
            else:
                with longrun.calling(context):
                    output = await tool.call(args, call_id)
        except ToolFailed as exc:
            error: str | None = exc.error
        except Exception as exc:  # a tool's own bug is the thread's error, not the worker's
            log.warning("tool %s failed on %s", tool.name, self.lease.thread_id, exc_info=True)
            error = f"{type(exc).__name__}: {exc}"[:300]
        else:
            error = None
            if isinstance(output, longrun.Started):
                if tool.long_running:
                    return self._started(tool, call_id, output.external_id, None)
                error = "answered 'started', but the tool is not declared long_running"
        if tool.long_running:
            await self.calls.close(self.lease, call_id)  # answered at once: no callback
        if tool.side_effects or tool.long_running:
            self.ledger[call_id] = self._ledger_buffer[call_id] = "done"
        if error is not None:
            self._append(ToolError(call_id=call_id, tool=tool.name, error=error))
            return self._count_error(error)
        assert isinstance(output, str)  # a Started was returned above
        if note:
            output = f"{note} Output: {output}"
        self._append(ToolResult(call_id=call_id, tool=tool.name, output=output[:TOOL_OUTPUT_LIMIT]))
        self.errors = 0
        return "running"

    def _unavailable(self, call_id: str, tool: str) -> Status:
        """An approved call whose tool is gone (its MCP server is down or no longer lists it)."""
        error = "the tool is not available now (is its MCP server down?); the call did not run"
        self._append(ToolError(call_id=call_id, tool=tool, error=error))
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
        started = [cid for cid, s in self.ledger.items() if s == "started"]
        if not started:  # nearly every run: nothing to look for in the events
            return False
        waiting = started_calls(self.events)  # those wait for a result: not interrupted
        unknown = [cid for cid in started if cid not in waiting]
        calls = {e.call_id: e for e in self.events if isinstance(e, AgentStep) and e.call_id}
        unknown = [cid for cid in unknown if not self._start_again(calls.get(cid))]
        if not unknown:
            return False
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
