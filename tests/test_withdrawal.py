"""Withdrawal when the ask changes: a human message while an approval is pending withdraws
it (REST end to end); the model decides again with the new message."""

from __future__ import annotations

import pytest

from agent.reducer import Decide, Idle, Withdraw, plan
from model.events import ApprovalRequest, Event, ToolResult, UserMessage
from tests.conftest import Service
from tests.fakes.openai_server import FakeOpenAI, step


async def test_a_new_message_withdraws_the_pending_approval(
    service: Service, fake_llm: FakeOpenAI
) -> None:
    fake_llm.script(
        step("deploy", tag="v1.2.3", env="production"),
        step("deploy", tag="v1.2.3", env="staging"),
    )
    r = await service.api.post(
        "/v1/threads", json={"message": "deploy v1.2.3 to production", "sender": "alice"}
    )
    tid = r.json()["thread_id"]
    view = await service.settled(tid, "awaiting_human")
    [first] = view.requests
    rid = first.request.request_id

    r = await service.api.post(
        f"/v1/threads/{tid}/messages", json={"message": "wait, make it staging instead"}
    )
    assert r.status_code == 202, r.text

    def asked_again(v: object) -> bool:
        return len(v.requests) == 2  # type: ignore[attr-defined]

    await service.wait(tid, asked_again)
    view = await service.settled(tid, "awaiting_human")
    old, new = view.requests
    assert (old.request.request_id, old.status) == (rid, "withdrawn")
    assert new.status == "pending"
    assert new.request.arguments == {"tag": "v1.2.3", "env": "staging"}
    [withdrawn] = [e for e in view.events if isinstance(e, ToolResult)]
    assert withdrawn.outcome == "withdrawn"
    assert '<withdrawn tool="deploy">' in fake_llm.contexts()[-1]
    assert [e.arguments["env"] for e in view.events if isinstance(e, ApprovalRequest)] == [
        "production",
        "staging",
    ]

    # The old approval answers "no longer pending" and decides nothing.
    r = await service.api.post(f"/v1/requests/{rid}", json={"decision": "approve"})
    assert r.status_code == 409
    assert "no longer pending" in r.json()["detail"]
    r = await service.api.post(
        f"/v1/requests/{new.request.request_id}", json={"decision": "approve"}
    )
    assert r.status_code == 200, r.text
    view = await service.settled(tid, "done")
    assert [e.output for e in view.events if isinstance(e, ToolResult) and e.outcome == "ok"] == [
        "deployed v1.2.3 to staging"
    ]


ASKED = ApprovalRequest(
    request_id="rq1",
    text="t",
    tool="deploy",
    arguments={"env": "production"},
    call_id="c1",
    withdraw_on_message=True,
)
LATER = UserMessage(channel="rest", sender="alice", text="make it staging")


@pytest.mark.parametrize(
    ("events", "ledger", "expected"),
    [
        ([ASKED, LATER], {}, Withdraw(ASKED)),
        ([ASKED.model_copy(update={"withdraw_on_message": False}), LATER], {}, Decide()),
        ([ASKED, LATER], {"c1": "started"}, Decide()),  # already running: nothing to withdraw
        (
            [ASKED, LATER, ToolResult(call_id="c1", tool="deploy", output="", outcome="withdrawn")],
            {},
            Decide(),
        ),
        ([LATER, ASKED], {}, Idle()),  # the message that led to the ask withdraws nothing
    ],
    ids=["withdraw", "keep", "running", "withdrawn already", "earlier message"],
)
def test_plan_withdraws_on_a_later_message(
    events: list[Event], ledger: dict[str, str], expected: object
) -> None:
    assert plan(events, ledger, "rest:alice") == expected
