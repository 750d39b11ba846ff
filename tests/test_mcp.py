"""Tools from MCP servers end to end: the real mcp client against a FastMCP server written
in the tests (tests/fakes/mcp_server.py), over stdio and over streamable HTTP on loopback;
REST in, a worker, the fake model over HTTP, approvals through the REST API."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from agent import config
from agent.config import Registry
from agent.llm import OpenAILLM
from agent.steps import response_schema
from agent.toolbox import Toolbox
from channels.mcp import client as mcp_client
from model.events import FinalAnswer, ToolError, ToolResult
from tests.conftest import Service
from tests.fakes import mcp_server
from tests.fakes.http_server import BackgroundServer
from tests.fakes.openai_server import FakeOpenAI, step

FAKE = Path(mcp_server.__file__)

Boxes = Callable[[str], Awaitable[tuple[Registry, Toolbox]]]


def _toml(servers: str) -> str:
    return f"""
default_agent = "ops"
[agents.ops]
module = "agent.examples.oncall"
prompt = "oncall/v1"
{servers}
"""


def stdio(log: Path, read_only: str = '["search", "get_*"]') -> str:
    return f"""
[agents.ops.mcp.ops]
command = [{json.dumps(sys.executable)}, {json.dumps(str(FAKE))}]
env = {{ MCP_FAKE_LOG = {json.dumps(str(log))} }}
read_only = {read_only}
connect_timeout = 20
[agents.ops.mcp.ops.tools.restart]
approvers = ["rest:*"]
"""


@pytest.fixture
async def boxes(tmp_path: Path) -> AsyncIterator[Boxes]:
    """Load a configuration, list its MCP servers' tools; every session closed at the end."""
    made: list[Toolbox] = []

    async def make(servers: str) -> tuple[Registry, Toolbox]:
        path = tmp_path / f"switchboard{len(made)}.toml"
        path.write_text(_toml(servers))
        registry = config.load(path)
        box = Toolbox(registry, registry.mcp, mcp_client.connect, retry_every=3600)
        made.append(box)
        await box.start()
        return registry, box

    yield make
    for box in made:
        await box.close()


async def _start(service: Service, text: str) -> str:
    r = await service.api.post("/v1/threads", json={"message": text, "agent": "ops"})
    assert r.status_code == 201, r.text
    return str(r.json()["thread_id"])


def _log(tmp_path: Path) -> Path:
    return tmp_path / "restarts.log"


def _ran(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


async def test_read_only_tool_runs_at_once_and_the_schema_is_strict(
    boxes: Boxes,
    service_factory: Callable[..., Awaitable[Service]],
    llm: OpenAILLM,
    fake_llm: FakeOpenAI,
    tmp_path: Path,
) -> None:
    registry, _ = await boxes(stdio(_log(tmp_path)))
    agent = registry.agents["ops"]
    assert {"search", "get_status", "restart"} <= set(agent.tools)
    assert not agent.tools["search"].needs_approval
    assert agent.tools["restart"].needs_approval  # no annotation is trusted: config decides
    variants = response_schema(agent)["$defs"]
    search = next(
        v for v in variants.values() if v["properties"]["intent"].get("const") == "search"
    )
    assert search["required"] == ["intent", "query", "limit"]
    assert search["additionalProperties"] is False
    assert search["properties"]["limit"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]

    service = await service_factory(llm, reg=registry)
    fake_llm.script(step("search", query="db", limit=2), step("done_for_now", message="found"))
    tid = await _start(service, "what do the notes say about the db?")
    view = await service.settled(tid, "done")
    results = [e for e in view.events if isinstance(e, ToolResult)]
    assert [(r.tool, r.output) for r in results] == [
        ("search", "note about db #1\nnote about db #2")
    ]
    assert view.requests == []
    assert (
        'name="search"' in fake_llm.contexts()[-1] or "note about db #2" in fake_llm.contexts()[-1]
    )


async def test_other_tool_waits_for_approval_and_runs_once_after_it(
    boxes: Boxes,
    service_factory: Callable[..., Awaitable[Service]],
    llm: OpenAILLM,
    fake_llm: FakeOpenAI,
    tmp_path: Path,
) -> None:
    log = _log(tmp_path)
    registry, _ = await boxes(stdio(log))
    service = await service_factory(llm, reg=registry)
    fake_llm.script(step("restart", service="api", reason=None))
    tid = await _start(service, "restart the api")
    view = await service.settled(tid, "awaiting_human")
    request = view.requests[0].request
    assert request.kind == "approval"
    assert request.tool == "restart"
    assert request.approvers == ["rest:*"]
    assert request.text.startswith("Approval needed: restart(service='api', reason=None)")
    assert (
        "MCP server ops says: not read-only, destructive (hints from the server, not verified)"
        in request.text
    )
    assert _ran(log) == []  # nothing runs before a human approves

    fake_llm.script(step("done_for_now", message="restarted"))
    r = await service.api.post(f"/v1/requests/{request.request_id}", json={"decision": "approve"})
    assert r.status_code == 200, r.text
    view = await service.settled(tid, "done")
    results = [e for e in view.events if isinstance(e, ToolResult)]
    assert [(r.tool, r.output) for r in results] == [("restart", "restarted api")]
    assert _ran(log) == ["restart api "]  # once, and the optional argument left out (null)


async def test_arguments_are_checked_against_the_servers_schema(
    boxes: Boxes,
    service_factory: Callable[..., Awaitable[Service]],
    llm: OpenAILLM,
    fake_llm: FakeOpenAI,
    tmp_path: Path,
) -> None:
    registry, _ = await boxes(stdio(_log(tmp_path)))
    service = await service_factory(llm, reg=registry)
    fake_llm.script(
        step("search", query=42, limit=None),
        step("done_for_now", message="gave up"),
    )
    tid = await _start(service, "search")
    view = await service.settled(tid, "done")
    errors = [e for e in view.events if isinstance(e, ToolError)]
    assert len(errors) == 1
    assert "query: 42 is not of type 'string'" in errors[0].error
    assert not [e for e in view.events if isinstance(e, ToolResult)]


async def test_a_schema_strict_mode_cannot_take_is_refused_by_name(
    boxes: Boxes, tmp_path: Path
) -> None:
    registry, box = await boxes(stdio(_log(tmp_path)))
    assert "tally" not in registry.agents["ops"].tools
    (why,) = [r for r in box.refused["ops"] if "tally" in r]
    assert why.startswith("MCP tool tally is not offered: keyword 'additionalProperties' at counts")


async def test_a_server_down_gives_tool_errors_and_the_agent_still_runs(
    boxes: Boxes,
    service_factory: Callable[..., Awaitable[Service]],
    llm: OpenAILLM,
    fake_llm: FakeOpenAI,
    tmp_path: Path,
) -> None:
    servers = (
        stdio(_log(tmp_path), '["search", "crash"]')
        + """
[agents.ops.mcp.gone]
command = ["/nonexistent/mcp-server"]
connect_timeout = 5
"""
    )
    registry, _ = await boxes(servers)
    assert "crash" in registry.agents["ops"].tools  # the other server's tools are offered
    service = await service_factory(llm, reg=registry)
    fake_llm.script(
        step("crash"),  # the server's process exits mid-call
        step("search", query="db", limit=1),  # the next call starts it again
        step("done_for_now", message="it came back"),
    )
    tid = await _start(service, "crash it")
    view = await service.settled(tid, "done")
    errors = [e for e in view.events if isinstance(e, ToolError)]
    assert [(e.tool, e.error) for e in errors] == [
        ("crash", "MCP server ops is unreachable: the connection was lost during the call")
    ]
    results = [e for e in view.events if isinstance(e, ToolResult)]
    assert [(r.tool, r.output) for r in results] == [("search", "note about db #1")]
    assert [e.text for e in view.events if isinstance(e, FinalAnswer)] == ["it came back"]


async def test_list_changed_refreshes_the_tools(
    boxes: Boxes,
    service_factory: Callable[..., Awaitable[Service]],
    llm: OpenAILLM,
    fake_llm: FakeOpenAI,
    tmp_path: Path,
) -> None:
    registry, _ = await boxes(stdio(_log(tmp_path), '["search", "enable_*", "extra"]'))
    assert "extra" not in registry.agents["ops"].tools
    service = await service_factory(llm, reg=registry)
    fake_llm.script(step("enable_extra"), step("done_for_now", message="enabled"))
    tid = await _start(service, "enable the extra tool")
    await service.settled(tid, "done")
    for _ in range(500):  # the notification arrives on its own; the refresh follows it
        if "extra" in registry.agents["ops"].tools:
            break
        await asyncio.sleep(0.02)
    assert "extra" in registry.agents["ops"].tools
    assert '"extra"' in json.dumps(response_schema(registry.agents["ops"]))

    fake_llm.script(step("extra", word="hi"), step("done_for_now", message="HI"))
    r = await service.api.post(f"/v1/threads/{tid}/messages", json={"message": "use it"})
    assert r.status_code == 202
    view = await service.settled(tid, "done")
    assert [(r.tool, r.output) for r in view.events if isinstance(r, ToolResult)][-1] == (
        "extra",
        "HI",
    )


@pytest.fixture
def http_mcp() -> Iterator[BackgroundServer]:
    server = BackgroundServer(mcp_server.http_app(), lifespan="on").start()
    yield server
    server.stop()


async def test_streamable_http_server_with_headers(
    boxes: Boxes,
    service_factory: Callable[..., Awaitable[Service]],
    llm: OpenAILLM,
    fake_llm: FakeOpenAI,
    http_mcp: BackgroundServer,
) -> None:
    servers = f"""
[agents.ops.mcp.web]
url = "{http_mcp.url}/mcp"
headers = {{ Authorization = "Bearer {mcp_server.TOKEN}" }}
read_only = ["get_*"]
[agents.ops.mcp.nokey]
url = "{http_mcp.url}/mcp"
read_only = ["*"]
"""
    registry, _ = await boxes(servers)
    tools = registry.agents["ops"].tools
    # The server without the header is refused (401): its tools are missing, nothing else.
    assert {"get_status", "restart"} <= set(tools)
    assert not [t for t in tools if t.startswith("nokey__")]
    service = await service_factory(llm, reg=registry)
    fake_llm.script(
        step("get_status", service="api"),
        step("restart", service="api", reason="degraded"),
    )
    tid = await _start(service, "is the api ok?")
    view = await service.settled(tid, "awaiting_human")
    assert [(r.tool, r.output) for r in view.events if isinstance(r, ToolResult)] == [
        ("get_status", "api: degraded (error rate 7%)")
    ]
    assert view.requests[0].request.tool == "restart"
    fake_llm.script(step("done_for_now", message="restarted"))
    rid = view.requests[0].request.request_id
    r = await service.api.post(f"/v1/requests/{rid}", json={"decision": "approve"})
    assert r.status_code == 200
    view = await service.settled(tid, "done")
    assert [(r.tool, r.output) for r in view.events if isinstance(r, ToolResult)][-1] == (
        "restart",
        "restarted api",
    )


async def test_names_taken_twice_are_namespaced_by_server(
    boxes: Boxes, http_mcp: BackgroundServer, tmp_path: Path
) -> None:
    servers = (
        stdio(_log(tmp_path))
        + f"""
[agents.ops.mcp.web]
url = "{http_mcp.url}/mcp"
headers = {{ Authorization = "Bearer {mcp_server.TOKEN}" }}
"""
    )
    registry, _ = await boxes(servers)
    tools = registry.agents["ops"].tools
    assert {"search", "web__search", "restart", "web__restart"} <= set(tools)
    assert tools["web__search"].needs_approval  # read-only on ops, not on web: no read_only
    assert not tools["search"].needs_approval


async def test_allowed_tools_keeps_the_servers_other_tools_from_the_agent(
    boxes: Boxes, tmp_path: Path
) -> None:
    servers = stdio(_log(tmp_path)).replace(
        "read_only = ", 'allowed_tools = ["search", "rest*"]\nread_only = ', 1
    )
    registry, box = await boxes(servers)
    assert sorted(registry.agents["ops"].tools) == ["restart", "search"]
    assert box.refused["ops"] == []  # tally, whose schema is refused, is not even looked at
