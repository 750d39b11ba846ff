"""Replay: another prompt version asked again at every recorded decision; nothing written."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import redis.asyncio as aioredis

from agent import replay
from agent.config import Registry
from agent.llm import OpenAILLM
from tests.conftest import ROOT, Service
from tests.fakes.openai_server import FakeOpenAI, step
from tests.process import clean_env


async def _threads(service: Service) -> list[str]:
    """Three finished or paused threads: 4 recorded decisions in all."""
    ids = []
    for text in ("deploy v1.2.3 to production", "hello there", "deploy v1.2.4 to staging"):
        r = await service.api.post("/v1/threads", json={"message": text, "sender": "alice"})
        ids.append(str(r.json()["thread_id"]))
    view = await service.settled(ids[0], "awaiting_human")
    rid = view.requests[0].request.request_id
    await service.api.post(f"/v1/requests/{rid}", json={"decision": "approve"})
    await service.settled(ids[0], "done")
    for tid in ids[1:]:
        await service.settled(tid, "awaiting_human")
    return ids


async def _stored(client: aioredis.Redis) -> dict[bytes, Any]:
    """Every key's value; streams by what their consumers have still to do: each group's
    last delivered entry and pending count, and the entries after it (the groups record
    each idle read, and a worker's maintenance trims what is acknowledged)."""
    out: dict[bytes, Any] = {}
    for key in sorted(await client.keys("*")):
        if await client.type(key) == b"stream":
            groups = await client.xinfo_groups(key)
            marks = [(g["name"], g["last-delivered-id"], g["pending"]) for g in groups]
            last = min((g["last-delivered-id"] for g in groups), default=b"0-0")
            out[key] = (marks, await client.xrange(key, min=b"(" + last))
        else:
            out[key] = await client.dump(key)
    return out


async def test_replay_reports_agreement_and_differences_and_writes_nothing(
    service: Service,
    fake_llm: FakeOpenAI,
    llm: OpenAILLM,
    registry: Registry,
    redis_client: aioredis.Redis,
) -> None:
    ids = await _threads(service)
    before = await _stored(redis_client)
    fake_llm.reset()
    # The first decision point (deploy to production) is decided otherwise by "v2".
    fake_llm.script(step("request_more_information", message="Which environment, really?"))
    chosen = await replay.select(service.store, "deploybot")
    assert sorted(chosen) == sorted(ids)

    report = await replay.replay(
        service.store, registry.agents["deploybot"], "deploybot/v2", llm, ids
    )

    assert (report.threads, report.decisions, report.agreed) == (3, 4, 3)
    assert report.per_intent["deploy"].model_dump() == {"decisions": 2, "agreed": 1}
    assert report.per_intent["done_for_now"].model_dump() == {"decisions": 1, "agreed": 1}
    assert report.per_intent["request_more_information"].model_dump() == {
        "decisions": 1,
        "agreed": 1,
    }
    [diff] = report.differences
    assert diff.thread_id == ids[0]
    assert diff.recorded == {
        "intent": "deploy",
        "arguments": {"tag": "v1.2.3", "env": "production"},
    }
    assert diff.replayed == {
        "intent": "request_more_information",
        "arguments": {"message": "Which environment, really?"},
    }
    assert diff.recorded_prompt == "deploybot/v1"
    # Asked with v2's system prompt, on the context as it was before each step.
    assert len(fake_llm.requests) == 4
    assert all(
        "careful release assistant" in r["messages"][0]["content"] for r in fake_llm.requests
    )
    assert fake_llm.contexts()[0].splitlines()[-1].startswith("<message")
    table = report.table()
    assert "4 decisions, 3/4 agree" in table
    assert "recorded: deploy(tag='v1.2.3', env='production')" in table
    assert await _stored(redis_client) == before


def test_since_reads_units() -> None:
    now = 1_000_000.0
    assert replay.since_ms("7d", now) == int((now - 7 * 86400) * 1000)
    assert replay.since_ms("90m", now) == int((now - 5400) * 1000)


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "main.py"),
        "replay",
        *args,
        cwd=ROOT,
        env={**clean_env(), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_replay_command(
    service: Service, fake_llm: FakeOpenAI, redis_url: str, redis_client: aioredis.Redis
) -> None:
    ids = await _threads(service)
    before = await _stored(redis_client)
    env = {
        "REDIS_URL": redis_url,
        "OPENAI_BASE_URL": fake_llm.base_url,
        "OPENAI_API_KEY": "test-key",
        "SWITCHBOARD_MODEL": "fake-model",
    }
    base = ("--agent", "deploybot", "--prompt", "deploybot/v2")
    code, out, err = await _cli(*base, "--limit", "2", "--json", env=env)
    assert code == 0, err
    report = json.loads(out)
    assert report["threads"] == 2
    assert report["decisions"] == report["agreed"] == 2  # the two newest: one decision each

    code, out, err = await _cli(*base, "--thread", ids[0], env=env)
    assert code == 0, err
    assert "1 threads, 2 decisions, 2/2 agree" in out

    code, out, err = await _cli(*base, "--since", "7d", "--json", env=env)
    assert code == 0, err
    assert json.loads(out)["threads"] == 3

    code, _, err = await _cli("--prompt", "deploybot/v9", env=env)
    assert code == 2
    assert "deploybot/v9" in err
    code, _, err = await _cli(*base, "--since", "a week", env=env)
    assert code == 2
    assert "--since" in err
    assert await _stored(redis_client) == before
