"""The deploy example end to end in one process: REST in, worker, fake model over HTTP."""

from __future__ import annotations

from model.events import AgentStep, FinalAnswer, HumanRequest, LLMError, ToolResult
from tests.conftest import Service
from tests.fakes.openai_server import FakeOpenAI, Raw, Status, step


async def _start(service: Service, text: str) -> str:
    r = await service.api.post("/v1/threads", json={"message": text, "sender": "alice"})
    assert r.status_code == 201, r.text
    return str(r.json()["thread_id"])


async def test_deploy_approved_runs_once_and_answers(
    service: Service, fake_llm: FakeOpenAI
) -> None:
    tid = await _start(service, "deploy v1.2.3 to production")
    view = await service.settled(tid, "awaiting_human")

    pending = (await service.api.get("/v1/requests", params={"status": "pending"})).json()
    assert [p["request"]["thread_id"] for p in pending] == [tid]
    request = pending[0]["request"]
    assert request["kind"] == "approval"
    assert request["tool"] == "deploy"
    assert request["arguments"] == {"tag": "v1.2.3", "env": "production"}
    steps = [e for e in view.events if isinstance(e, AgentStep)]
    assert [s.prompt for s in steps] == ["deploybot/v1"]
    assert [o.item.kind for o in view.outbox] == ["approval"]
    assert view.outbox[0].status == "sent"

    r = await service.api.post(
        f"/v1/requests/{request['request_id']}", json={"decision": "approve"}
    )
    assert r.status_code == 200, r.text
    view = await service.settled(tid, "done")

    results = [e for e in view.events if isinstance(e, ToolResult)]
    assert [(r.tool, r.output) for r in results] == [("deploy", "deployed v1.2.3 to production")]
    finals = [e for e in view.events if isinstance(e, FinalAnswer)]
    assert "deployed v1.2.3 to production" in finals[-1].text
    assert [o.item.kind for o in view.outbox] == ["approval", "final"]
    assert (await service.api.get("/v1/requests")).json() == []

    again = await service.api.post(
        f"/v1/requests/{request['request_id']}", json={"decision": "approve"}
    )
    assert again.status_code == 409
    assert "already answered" in again.json()["detail"]


async def test_reject_comment_reaches_the_model(service: Service, fake_llm: FakeOpenAI) -> None:
    tid = await _start(service, "deploy v1.2.3 to production")
    view = await service.settled(tid, "awaiting_human")
    rid = view.requests[0].request.request_id

    r = await service.api.post(
        f"/v1/requests/{rid}", json={"decision": "reject", "comment": "freeze until Monday"}
    )
    assert r.status_code == 200
    view = await service.settled(tid, "done")

    last_context = fake_llm.contexts()[-1]
    assert "freeze until Monday" in last_context
    assert '<rejected tool="deploy">rejected by api: freeze until Monday</rejected>' in last_context
    results = [e for e in view.events if isinstance(e, ToolResult)]
    assert [r.outcome for r in results] == ["rejected"]
    assert "freeze until Monday" in [e for e in view.events if isinstance(e, FinalAnswer)][-1].text


async def test_question_pauses_and_answer_resumes(service: Service, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(step("request_more_information", message="Which environment?"))
    tid = await _start(service, "deploy the new release")
    view = await service.settled(tid, "awaiting_human")
    question = view.requests[0].request
    assert question.kind == "question"
    assert question.text == "Which environment?"

    wrong = await service.api.post(
        f"/v1/requests/{question.request_id}", json={"decision": "approve"}
    )
    assert wrong.status_code == 422
    r = await service.api.post(f"/v1/requests/{question.request_id}", json={"answer": "staging"})
    assert r.status_code == 200
    await service.settled(tid, "done")
    assert '<answer from="api">staging</answer>' in fake_llm.contexts()[-1]


async def test_plain_tool_loops_without_pausing(service: Service, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(step("list_tags"), step("done_for_now", message="v1.2.3 is the latest"))
    tid = await _start(service, "what can I deploy?")
    view = await service.settled(tid, "done")
    results = [e for e in view.events if isinstance(e, ToolResult)]
    assert results[0].tool == "list_tags"
    assert results[0].output.splitlines() == ["v1.2.1", "v1.2.2", "v1.2.3"]
    assert "v1.2.3" in fake_llm.contexts()[-1]


async def test_errors_are_compacted_then_dropped(service: Service, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(
        Raw("this is not json"),
        step("deploy", tag="latest", env="production"),  # breaks the tag pattern
        step("list_tags"),
        step("done_for_now", message="listed"),
    )
    tid = await _start(service, "deploy latest")
    view = await service.settled(tid, "done")
    contexts = fake_llm.contexts()
    assert '<error kind="invalid_output">' in contexts[1]
    assert "Traceback" not in contexts[2]
    # Arguments are checked against the tool's model before anything runs.
    assert (
        '<error kind="invalid_output">step.deploy.tag: String should match pattern' in contexts[2]
    )
    # Once list_tags succeeded, the errors and the failed attempt left the context.
    assert "<error" not in contexts[3]
    assert 'tag="latest"' not in contexts[3]
    assert view.state.errors == 0


async def test_three_errors_in_a_row_ask_a_human(service: Service, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(Status(500), Status(429), Raw("{}"))
    tid = await _start(service, "deploy v1.2.3 to production")
    view = await service.settled(tid, "awaiting_human")
    errors = [e for e in view.events if isinstance(e, LLMError)]
    assert [e.kind for e in errors] == ["unavailable", "rate_limited", "invalid_output"]
    assert len(fake_llm.requests) == 3
    question = view.requests[0].request
    assert question.kind == "question"
    assert "3 errors in a row" in question.text
    assert [o.item.kind for o in view.outbox] == ["question"]

    # The human answers; the model gets another chance with a fresh error count.
    await service.api.post(f"/v1/requests/{question.request_id}", json={"answer": "try again"})
    view = await service.settled(tid, "done")
    assert view.state.errors == 0


async def test_step_limit_stops_and_tells_the_human(service: Service, fake_llm: FakeOpenAI) -> None:
    fake_llm.brain = lambda messages: step("list_tags")
    tid = await _start(service, "loop forever")
    view = await service.settled(tid, "awaiting_human")
    assert len(fake_llm.requests) == 10
    assert view.outbox[-1].item.kind == "notice"
    assert "stopped after 10 steps" in view.outbox[-1].item.text


async def test_no_llm_configured_records_error_and_tells_human(
    service_factory: object, fake_llm: FakeOpenAI
) -> None:
    from agent.llm import NoLLM

    service = await service_factory(NoLLM())  # type: ignore[operator]
    tid = await _start(service, "deploy v1.2.3 to production")
    view = await service.settled(tid, "awaiting_human")
    errors = [e for e in view.events if isinstance(e, LLMError)]
    assert [e.kind for e in errors] == ["not_configured"]
    assert "OPENAI_API_KEY" in view.outbox[0].item.text
    assert not fake_llm.requests


async def test_message_while_paused_continues_thread(
    service: Service, fake_llm: FakeOpenAI
) -> None:
    tid = await _start(service, "deploy v1.2.3 to production")
    await service.settled(tid, "awaiting_human")
    fake_llm.script(step("done_for_now", message="Waiting for the approval."))
    r = await service.api.post(f"/v1/threads/{tid}/messages", json={"message": "any news?"})
    assert r.status_code == 202
    view = await service.settled(tid, "done")
    assert "any news?" in fake_llm.contexts()[-1]
    # on_new_message = "withdraw" (the default): the ask may have changed, so the pending
    # approval is withdrawn and the model decides again with the new message.
    assert [r.status for r in view.requests] == ["withdrawn"]
    assert '<withdrawn tool="deploy">' in fake_llm.contexts()[-1]
    assert isinstance(view.events[-1], FinalAnswer)
    assert any(isinstance(e, HumanRequest) for e in view.events)


async def test_message_during_a_run_is_merged_into_the_next_step(
    service_factory: object, llm: object, fake_llm: FakeOpenAI, tmp_path: object
) -> None:
    from pathlib import Path

    from agent import config
    from model.events import SystemNote
    from tests.conftest import ROOT

    text = (
        (ROOT / "switchboard.toml")
        .read_text()
        .replace(
            'command = ["{python}", "-c", "print(\'v1.2.1\\\\nv1.2.2\\\\nv1.2.3\')"]',
            'command = ["{python}", "-c", "import time; time.sleep(0.5); print(\'v1.2.3\')"]',
        )
    )
    assert "time.sleep" in text
    cfg = Path(str(tmp_path)) / "slow.toml"
    cfg.write_text(text)
    service = await service_factory(llm, reg=config.load(cfg))  # type: ignore[operator]
    fake_llm.script(step("list_tags"))
    tid = await _start(service, "what can I deploy?")
    await service.wait(
        tid, lambda v: v.state.lease_owner is not None and len(fake_llm.requests) == 1
    )
    await service.api.post(f"/v1/threads/{tid}/messages", json={"message": "only staging please"})
    view = await service.settled(tid, "awaiting_human")
    second = fake_llm.contexts()[1]
    assert "only staging please" in second
    assert '<note kind="merged_messages">' in second
    assert any(isinstance(e, SystemNote) and e.kind == "merged_messages" for e in view.events)


async def test_unanswered_approval_expires_and_the_model_is_told(
    service_factory: object, llm: object, fake_llm: FakeOpenAI, tmp_path: object
) -> None:
    from pathlib import Path

    from agent import config
    from tests.conftest import ROOT

    text = (
        (ROOT / "switchboard.toml")
        .read_text()
        .replace("max_steps = 10", "max_steps = 10\nrequest_timeout = 0.3")
    )
    cfg = Path(str(tmp_path)) / "expiring.toml"
    cfg.write_text(text)
    service = await service_factory(llm, reg=config.load(cfg))  # type: ignore[operator]
    tid = await _start(service, "deploy v1.2.3 to production")
    view = await service.settled(tid, "done", within=15)
    assert [r.status for r in view.requests] == ["expired"]
    results = [e for e in view.events if isinstance(e, ToolResult)]
    assert [r.outcome for r in results] == ["expired"]
    assert '<expired tool="deploy">' in fake_llm.contexts()[-1]
    rid = view.requests[0].request.request_id
    late = await service.api.post(f"/v1/requests/{rid}", json={"decision": "approve"})
    assert late.status_code == 409
    assert "expired" in late.json()["detail"]
    assert (await service.api.get("/v1/requests")).json() == []
