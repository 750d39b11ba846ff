"""Prompt A/B: weights in the configuration, a sticky version per thread, on every step."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from agent import config, prompts
from agent.config import Registry
from agent.errors import ConfigError
from agent.llm import OpenAILLM
from agent.tools import Agent
from model.events import AgentStep
from model.ids import new_id
from tests.conftest import ROOT, Service
from tests.fakes.openai_server import FakeOpenAI

AB = '{ "deploybot/v1" = 90, "deploybot/v2" = 10 }'


def _config(tmp_path: Path, prompt: str) -> Path:
    text = (ROOT / "switchboard.toml").read_text()
    path = tmp_path / "switchboard.toml"
    path.write_text(text.replace('prompt = "deploybot/v1"', f"prompt = {prompt}", 1))
    return path


@pytest.fixture
def ab(tmp_path: Path) -> Agent:
    return config.load(_config(tmp_path, AB)).agents["deploybot"]


def test_one_version_is_still_a_plain_string(registry: Registry) -> None:
    agent = registry.agents["deploybot"]
    assert agent.prompt == "deploybot/v1"
    assert prompts.weights(agent) == {"deploybot/v1": 1}
    assert prompts.assigned(agent, "th_any", []) == "deploybot/v1"


def test_weights_are_read(ab: Agent) -> None:
    assert dict(ab.prompt_weights) == {"deploybot/v1": 90, "deploybot/v2": 10}
    assert ab.prompt == "deploybot/v1"  # the heaviest stands for the agent


@pytest.mark.parametrize(
    ("prompt", "why"),
    [
        ('{ "deploybot/v1" = 0 }', "positive total"),
        ('{ "deploybot/v1" = -1, "deploybot/v2" = 5 }', ">= 0"),
        ('{ "deploybot/v1" = 50, "deploybot/v9" = 50 }', "deploybot/v9"),
    ],
)
def test_bad_weights_are_refused_at_start(tmp_path: Path, prompt: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        config.load(_config(tmp_path, prompt))


def test_assignment_follows_the_weights_over_2000_threads(ab: Agent) -> None:
    drawn = Counter(prompts.draw(ab, new_id("th")) for _ in range(2_000))
    assert abs(drawn["deploybot/v2"] / 2_000 - 0.10) < 0.025
    assert drawn["deploybot/v1"] + drawn["deploybot/v2"] == 2_000


def test_assignment_is_sticky(ab: Agent) -> None:
    tid = next(t for t in (f"th_{i}" for i in range(1000)) if prompts.draw(ab, t) == "deploybot/v2")
    assert {prompts.assigned(ab, tid, []) for _ in range(5)} == {"deploybot/v2"}
    # Once a step was decided with a version, the thread keeps it, whatever the weights say.
    step = AgentStep(intent="list_tags", prompt="deploybot/v1", call_id="c1")
    assert prompts.assigned(ab, tid, [step]) == "deploybot/v1"
    only_v2 = replace(ab, prompt="deploybot/v2", prompt_weights={"deploybot/v2": 1})
    assert prompts.assigned(only_v2, tid, [step]) == "deploybot/v2"  # v1 no longer offered


async def test_steps_record_the_threads_version(
    service_factory: Callable[..., Awaitable[Service]],
    llm: OpenAILLM,
    fake_llm: FakeOpenAI,
    tmp_path: Path,
) -> None:
    half = '{ "deploybot/v1" = 50, "deploybot/v2" = 50 }'
    ab = config.load(_config(tmp_path, half)).agents["deploybot"]
    service = await service_factory(llm, reg=Registry({"deploybot": ab}, "deploybot"))
    started = []
    for i in range(8):
        r = await service.api.post(
            "/v1/threads", json={"message": "deploy v1.2.3 to production", "sender": f"u{i}"}
        )
        started.append(str(r.json()["thread_id"]))
    for tid in started:
        view = await service.settled(tid, "awaiting_human")
        steps = [e for e in view.events if isinstance(e, AgentStep)]
        assert {s.prompt for s in steps} == {prompts.draw(ab, tid)}
        got = (await service.api.get(f"/v1/threads/{tid}")).json()
        assert got["context"]["prompt"] == prompts.draw(ab, tid)
        assert got["context"]["budget"] == ab.context_tokens
    assert fake_llm.requests, "the model was asked"
