"""A worker process killed mid-tool-call (SIGKILL): another worker finishes the thread, and the
side-effect tool is not run a second time; its unknown outcome goes to a human."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from prometheus_client import REGISTRY

from agent import config
from agent.llm import OpenAILLM
from agent.runner import RunSettings
from model.events import Approved, FinalAnswer, ToolResult, UserMessage
from model.records import Origin
from store.threads import NewThread, ThreadStore
from tests.conftest import ROOT, Service
from tests.fakes.openai_server import FakeOpenAI

SLOW_DEPLOY = """
import sys, time
with open(sys.argv[1], "a") as f:
    f.write(sys.argv[2] + "\\n")
time.sleep(60)
print("deployed")
"""


def _config(tmp: Path, marker: Path) -> Path:
    script = tmp / "slow_deploy.py"
    script.write_text(SLOW_DEPLOY)
    path = tmp / "switchboard.toml"
    path.write_text(
        f"""
[agents.deploybot]
module = "agent.examples.deploybot"
prompt = "deploybot/v1"

[agents.deploybot.tools.list_tags]
command = ["{{python}}", "-c", "print('v1.2.3')"]

[agents.deploybot.tools.deploy]
command = ["{{python}}", "{script}", "{marker}", "{{tag}}"]
approvers = ["rest:*"]

[agents.deploybot.tools.rollback]
command = ["{{python}}", "-c", "print('ok')"]
"""
    )
    return path


async def _until(check: Callable[[], Awaitable[bool]], within: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_killed_worker_thread_is_finished_by_another_without_rerun(
    tmp_path: Path,
    redis_url: str,
    store: ThreadStore,
    fake_llm: FakeOpenAI,
    llm: OpenAILLM,
    service_factory: Callable[..., Awaitable[Service]],
) -> None:
    marker = tmp_path / "deploys.log"
    cfg = _config(tmp_path, marker)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "OPENAI_"))}
    env.update(
        REDIS_URL=redis_url,
        OPENAI_BASE_URL=fake_llm.base_url,
        OPENAI_API_KEY="test-key",
        SWITCHBOARD_CONFIG=str(cfg),
        SWITCHBOARD_LEASE_TTL_MS="1500",
    )
    victim = await asyncio.create_subprocess_exec(
        sys.executable,
        "main.py",
        "worker",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await store.append_inbound(
            "th_crash",
            UserMessage(channel="rest", sender="alice", text="deploy v1.2.3 to production"),
            create=NewThread(agent="deploybot", origin=Origin(channel="rest", address="alice")),
        )

        async def approval_pending() -> bool:
            return bool(await store.pending_requests())

        await _until(approval_pending)
        request = (await store.pending_requests())[0].request
        await store.answer(
            request.request_id,
            Approved(
                request_id=request.request_id,
                channel="rest",
                responder="ops",
            ),
        )

        async def deploy_started() -> bool:
            return marker.exists() and marker.read_text().count("\n") == 1

        await _until(deploy_started)
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
    finally:
        if victim.returncode is None:
            victim.kill()
            await victim.wait()

    # A second worker, in this process, with the same short lease.
    takeovers = REGISTRY.get_sample_value("switchboard_lease_takeovers_total") or 0
    registry = config.load(cfg)
    service = await service_factory(llm, reg=registry, run=RunSettings(lease_ttl_ms=1500))
    view = await service.settled("th_crash", "awaiting_human", within=20)
    unknown = [e for e in view.events if isinstance(e, ToolResult)]
    assert [(r.tool, r.outcome) for r in unknown] == [("deploy", "unknown")]
    assert REGISTRY.get_sample_value("switchboard_lease_takeovers_total") == takeovers + 1
    question = next(r for r in view.requests if r.status == "pending").request
    assert question.kind == "question"
    assert "deploy(tag='v1.2.3', env='production')" in question.text

    await service.api.post(f"/v1/requests/{question.request_id}", json={"answer": "it went out"})
    view = await service.settled("th_crash", "done")
    assert isinstance(view.events[-1], FinalAnswer)
    assert marker.read_text().splitlines() == ["v1.2.3"]  # the deploy ran exactly once
