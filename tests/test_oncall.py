"""The on-call example as shipped in switchboard.toml: its MCP server started over stdio,
read-only investigation at once, the rollback only after a human approves it (REST)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from agent import config
from agent.config import Registry
from agent.llm import OpenAILLM
from agent.toolbox import Toolbox
from channels.mcp import client as mcp_client
from model.events import ToolError, ToolResult
from tests.conftest import ROOT, Service
from tests.fakes.openai_server import FakeOpenAI, step


def uncommented(text: str) -> str:
    """switchboard.toml with the on-call block enabled as its comment says to."""
    head, block = text.split("# ---- on-call", 1)
    block, tail = block.split("# ---- end of on-call", 1)
    lines = [
        line[2:] if line.startswith("# ") else line[1:] if line.startswith("#") else line
        for line in block.splitlines()[1:]
    ]
    return head + "\n".join(lines) + tail.split("\n", 1)[1]


@pytest.fixture
async def shipped(tmp_path: Path) -> AsyncIterator[Registry]:
    path = tmp_path / "switchboard.toml"
    path.write_text(uncommented((ROOT / "switchboard.toml").read_text()))
    registry = config.load(path)
    box = Toolbox(registry, registry.mcp, mcp_client.connect)
    await box.start()
    assert box.refused == {"oncall": []}
    yield registry
    await box.close()


async def test_oncall_investigates_then_rolls_back_once_approved(
    shipped: Registry,
    service_factory: Callable[..., Awaitable[Service]],
    llm: OpenAILLM,
    fake_llm: FakeOpenAI,
) -> None:
    tools = shipped.agents["oncall"].tools
    assert sorted(tools) == ["get_deploys", "recent_errors", "rollback"]
    assert [n for n, t in tools.items() if t.needs_approval] == ["rollback"]

    service = await service_factory(llm, reg=shipped)
    fake_llm.script(
        step("recent_errors", service="checkout", minutes=None),
        step("get_deploys", service="checkout"),
        step("rollback", service="checkout", to_version="v2.4.0"),
    )
    r = await service.api.post(
        "/v1/threads", json={"message": "checkout is failing", "agent": "oncall"}
    )
    tid = r.json()["thread_id"]
    view = await service.settled(tid, "awaiting_human")
    outputs = [e.output for e in view.events if isinstance(e, ToolResult)]
    assert "KeyError 'currency'" in outputs[0]
    assert outputs[1].startswith("v2.4.1 deployed 14:02 UTC")
    request = view.requests[0].request
    assert request.text.splitlines() == [
        "Approval needed: rollback(service='checkout', to_version='v2.4.0')",
        "MCP server ops says: not read-only, destructive (hints from the server, not verified).",
    ]
    assert "rolled" not in " ".join(outputs)

    fake_llm.script(
        step("recent_errors", service="checkout", minutes=10),
        step("done_for_now", message="Rolled back; errors stopped."),
    )
    r = await service.api.post(f"/v1/requests/{request.request_id}", json={"decision": "approve"})
    assert r.status_code == 200, r.text
    view = await service.settled(tid, "done")
    outputs = [e.output for e in view.events if isinstance(e, ToolResult)]
    assert outputs[2:] == [
        "rolled checkout back from v2.4.1 to v2.4.0",
        "checkout: no errors in 10 min",
    ]
    assert not [e for e in view.events if isinstance(e, ToolError)]
