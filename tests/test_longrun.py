"""Long-running tools end to end: the command says "started", the thread waits, the result
comes to POST /v1/calls/{call_id}/result (token or signed URL), once; or the timeout does."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agent import config
from agent.actions import HttpAction
from agent.config import Registry
from agent.llm import OpenAILLM
from agent.longrun import CallContext, Started, calling, started
from model.events import CallReported, SystemNote, ToolError, ToolResult, ToolStarted
from tests import longrun_tools
from tests.conftest import Service
from tests.fakes.http_server import BackgroundServer
from tests.fakes.openai_server import FakeOpenAI, step
from tests.longrun_tools import Job

# The deploy command starts a job: it leaves its result URL where the test finds it (as a
# CI system would keep it) and says "started" on its last line.
STARTS = (
    "import json, os, sys; "
    "open(sys.argv[1], 'w').write(json.dumps(dict((k, os.environ[k]) for k in "
    "('SWITCHBOARD_CALL_ID', 'SWITCHBOARD_RESULT_URL')))); "
    "print('queued'); print(json.dumps(dict(started='job-42')))"
)


def _registry(tmp_path: Path, timeout: float = 60) -> Registry:
    seen = tmp_path / "call.json"
    text = f"""
default_agent = "deploybot"
[agents.deploybot]
module = "agent.examples.deploybot"
prompt = "deploybot/v1"
[agents.deploybot.tools.list_tags]
command = ["{{python}}", "-c", "print('v1.2.3')"]
[agents.deploybot.tools.deploy]
command = ["{{python}}", "-c", "{STARTS}", "{seen}"]
needs_approval = false
long_running = true
timeout = {timeout}
[agents.deploybot.tools.rollback]
command = ["{{python}}", "-c", "print('rolled back')"]
"""
    (tmp_path / "switchboard.toml").write_text(text)
    return config.load(tmp_path / "switchboard.toml")


Factory = Callable[..., Awaitable[Service]]


AUTH = {"authorization": "Bearer s3cret"}


async def _started(service: Service, tmp_path: Path) -> tuple[str, dict[str, str]]:
    r = await service.api.post(
        "/v1/threads", json={"message": "deploy v1.2.3 to staging", "sender": "alice"}, headers=AUTH
    )
    tid = str(r.json()["thread_id"])
    view = await service.settled(tid, "waiting")
    started = [e for e in view.events if isinstance(e, ToolStarted)]
    assert [(s.tool, s.external_id) for s in started] == [("deploy", "job-42")]
    assert not [e for e in view.events if isinstance(e, ToolResult)]
    assert not view.requests  # waiting for the job, not for a human
    assert view.outbox == []
    return tid, json.loads((tmp_path / "call.json").read_text())


async def test_result_by_token_resumes_and_a_repeat_is_stored_once(
    service_factory: Factory, llm: OpenAILLM, tmp_path: Path
) -> None:
    service = await service_factory(llm, api_token="s3cret", reg=_registry(tmp_path))
    auth = AUTH
    tid, call = await _started(service, tmp_path)
    call_id = call["SWITCHBOARD_CALL_ID"]
    url = f"/v1/calls/{call_id}/result"

    assert (await service.api.post(url, json={"result": "x"})).status_code == 401
    r = await service.api.post(url, json={"result": "deployed v1.2.3 to staging"}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"call_id": call_id, "thread_id": tid, "duplicate": False}
    again = await service.api.post(url, json={"result": "something else"}, headers=auth)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True

    view = await service.settled(tid, "done")
    results = [e for e in view.events if isinstance(e, ToolResult)]
    assert [(r.tool, r.output) for r in results] == [("deploy", "deployed v1.2.3 to staging")]
    reports = [e for e in view.events if isinstance(e, CallReported)]
    assert [(e.text, e.by) for e in reports] == [("deployed v1.2.3 to staging", "rest:api")]
    assert view.events[-1].type == "final_answer"


async def test_signed_url_alone_is_enough_and_a_forged_one_is_refused(
    service_factory: Factory, llm: OpenAILLM, tmp_path: Path
) -> None:
    service = await service_factory(llm, api_token="s3cret", reg=_registry(tmp_path))
    tid, call = await _started(service, tmp_path)
    signed = urlsplit(call["SWITCHBOARD_RESULT_URL"])
    path = f"{signed.path}?{signed.query}"
    assert signed.path == f"/v1/calls/{call['SWITCHBOARD_CALL_ID']}/result"

    forged = path.replace("signature=", "signature=0")
    assert (await service.api.post(forged, json={"result": "x"})).status_code == 401
    other = f"/v1/calls/call_other/result?{signed.query}"  # signed for another call
    assert (await service.api.post(other, json={"result": "x"})).status_code == 401
    assert (await service.store.thread(tid)).inbox == []

    r = await service.api.post(path, json={"error": "the job failed: disk full"})
    assert r.status_code == 200, r.text
    view = await service.settled(tid, "awaiting_human")  # the brain asks what to do
    errors = [e for e in view.events if isinstance(e, ToolError)]
    assert [(e.tool, e.error) for e in errors] == [("deploy", "the job failed: disk full")]
    assert [e.by for e in view.events if isinstance(e, CallReported)] == ["signed"]


async def test_unknown_call_is_404_and_bad_bodies_are_refused(service: Service) -> None:
    r = await service.api.post("/v1/calls/call_nope/result", json={"result": "x"})
    assert r.status_code == 404
    bad = await service.api.post("/v1/calls/call_nope/result", json={"output": "x"})
    assert bad.status_code == 422
    both = await service.api.post("/v1/calls/call_nope/result", json={"result": "", "error": "e"})
    assert both.status_code == 422


async def test_three_timeouts_in_a_row_go_to_a_human(
    service_factory: Factory, llm: OpenAILLM, fake_llm: FakeOpenAI, tmp_path: Path
) -> None:
    fake_llm.script(*[step("deploy", tag="v1.2.3", env="staging")] * 3)
    service = await service_factory(llm, reg=_registry(tmp_path, timeout=0.2))
    r = await service.api.post("/v1/threads", json={"message": "deploy", "sender": "alice"})
    tid = str(r.json()["thread_id"])

    view = await service.settled(tid, "awaiting_human", within=20)
    errors = [e for e in view.events if isinstance(e, ToolError)]
    assert len(errors) == 3
    assert all(e.error.startswith("timed out: no result within 0.2s") for e in errors)
    assert [e.kind for e in view.events if isinstance(e, SystemNote)] == ["escalation"]
    assert view.requests[-1].request.kind == "question"
    assert "3 errors in a row" in view.requests[-1].request.text

    # The job's result after its timeout is refused: the thread heard "timed out" already.
    call_id = errors[0].call_id
    late = await service.api.post(f"/v1/calls/{call_id}/result", json={"result": "done"})
    assert late.status_code == 409
    assert not [e for e in (await service.store.thread(tid)).events if isinstance(e, ToolResult)]


@pytest.mark.parametrize("output", ["queued", '{"started": ""}', '{"started": 3}'])
def test_only_a_started_line_starts(output: str) -> None:
    assert started(output) is None
    assert started(f'{output}\n{{"started": "j-1"}}\n') == Started("j-1")


async def test_a_python_tool_returns_started_and_gets_its_url(
    service_factory: Factory, llm: OpenAILLM, fake_llm: FakeOpenAI, tmp_path: Path
) -> None:
    path = tmp_path / "switchboard.toml"
    path.write_text('[agents.jobs]\nmodule = "tests.longrun_tools"\nprompt = "deploybot/v1"\n')
    fake_llm.script(
        step("start_job", name="nightly"), step("done_for_now", message="nightly finished")
    )
    service = await service_factory(llm, reg=config.load(path))
    r = await service.api.post("/v1/threads", json={"message": "run nightly", "sender": "bo"})
    tid = str(r.json()["thread_id"])
    view = await service.settled(tid, "waiting")
    [started] = [e for e in view.events if isinstance(e, ToolStarted)]
    assert (started.external_id, started.timeout) == ("py-nightly", 60)
    [call] = longrun_tools.SEEN[-1:]
    assert call is not None
    assert call.call_id == started.call_id
    assert call.result_url.startswith(f"http://127.0.0.1:8000/v1/calls/{call.call_id}/result?")

    r = await service.api.post(f"/v1/calls/{call.call_id}/result", json={"result": "42 rows"})
    assert r.status_code == 200, r.text
    view = await service.settled(tid, "done")
    assert [e.output for e in view.events if isinstance(e, ToolResult)] == ["42 rows"]


async def test_an_http_tool_gets_the_headers_and_may_answer_started() -> None:
    heard: list[dict[str, str]] = []

    async def start(request: Request) -> JSONResponse:
        heard.append(dict(request.headers))
        return JSONResponse({"started": "h-1"})

    server = BackgroundServer(Starlette(routes=[Route("/jobs", start, methods=["POST"])]))
    server.start()
    try:
        action = HttpAction("job", f"{server.url}/jobs")
        with calling(CallContext("call_1", "http://sb/v1/calls/call_1/result?sig")):
            assert await action(Job(name="n")) == Started("h-1")
        assert heard[-1]["switchboard-call-id"] == "call_1"
        assert heard[-1]["switchboard-result-url"] == "http://sb/v1/calls/call_1/result?sig"
        # Outside a long-running call the same body is just the result.
        assert await action(Job(name="n")) == '{"started":"h-1"}'
        assert "switchboard-call-id" not in heard[-1]
    finally:
        server.stop()
