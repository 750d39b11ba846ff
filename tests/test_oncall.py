"""The on-call example as shipped in switchboard.toml (its block uncommented): two agents, the
MCP server started over stdio for each, the server's rollback offered to rollbacker alone,
approved in Slack then by text; the alert trigger that starts it. The run itself, through
Slack, is tests/slack/test_oncall_alert.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent import config
from agent.config import Registry
from agent.toolbox import Toolbox
from channels.mcp import client as mcp_client
from tests.conftest import ROOT


def uncommented(text: str) -> str:
    """switchboard.toml with the on-call block enabled as its comment says to."""
    head, block = text.split("# ---- on-call", 1)
    block, tail = block.split("# ---- end of on-call", 1)
    lines = [
        line[2:] if line.startswith("# ") else line[1:] if line.startswith("#") else line
        for line in block.splitlines()[1:]
    ]
    return head + "\n".join(lines) + tail.split("\n", 1)[1]


def _enabled(path: Path) -> Registry:
    path.write_text(uncommented((ROOT / "switchboard.toml").read_text()))
    return config.load(path)


async def load_shipped(path: Path) -> tuple[Registry, Toolbox]:
    """The shipped file, enabled, at ``path``; its MCP servers' tools listed."""
    registry = _enabled(path)
    box = Toolbox(registry, registry.mcp, mcp_client.connect)
    await box.start()
    assert box.refused == {"oncall": [], "rollbacker": []}
    return registry, box


@pytest.fixture
async def shipped(tmp_path: Path) -> AsyncIterator[Registry]:
    registry, box = await load_shipped(tmp_path / "switchboard.toml")
    yield registry
    await box.close()


async def test_oncall_reads_and_hands_off_and_only_rollbacker_rolls_back(
    shipped: Registry,
) -> None:
    oncall, rollbacker = shipped.agents["oncall"], shipped.agents["rollbacker"]
    # allowed_tools keeps the server's rollback from oncall: its own is the handoff.
    assert sorted(oncall.tools) == ["get_deploys", "recent_errors", "rollback"]
    handoff = oncall.tools["rollback"].handoff
    assert handoff is not None
    assert handoff.agent == "rollbacker"
    assert [n for n, t in oncall.tools.items() if t.needs_approval] == []
    assert handoff.render(
        {"service": "checkout", "to_version": "v2.4.0", "reason": "errors since v2.4.1"}
    ) == ("Roll checkout back to v2.4.0. Why: errors since v2.4.1")

    assert sorted(rollbacker.tools) == ["get_deploys", "rollback"]
    rollback = rollbacker.tools["rollback"]
    assert rollback.handoff is None
    assert [n for n, t in rollbacker.tools.items() if t.needs_approval] == ["rollback"]
    assert [str(a) for a in rollback.approvers] == ["slack:U0123ONCALL", "sms:+15551234567"]
    assert rollback.approval is not None
    assert [(s.notify, s.after) for s in rollback.approval.route] == [
        (["slack:C0123ONCALL"], 0),
        (["sms:+15551234567"], 600),
    ]

    alert = shipped.triggers["alert"]
    assert (alert.agent, alert.report_to) == ("oncall", ["slack:C0123ONCALL"])
    assert (alert.secret_env, alert.dedupe) == ("ONCALL_ALERT_SECRET", "alert.id")


def test_the_shipped_file_keeps_the_example_off() -> None:
    """Enabled, every process would start two MCP servers: the block stays commented out."""
    registry = config.load(ROOT / "switchboard.toml")
    assert sorted(registry.agents) == ["deploybot"]
    assert registry.mcp == {}
    assert registry.triggers == {}
