"""``summarize = "model"`` (agent/summaries.py): the model writes the summary lines of the turns
the snapshot moves past; they are stored as events, reused by later runs, and a failed call
falls back to the code's line, recorded."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agent import config, prompts, snapshot, summaries, window
from agent.config import Registry
from agent.context import render
from agent.errors import ConfigError, LLMFailed
from agent.llm import Completion
from agent.runner import Run
from agent.tools import Agent
from model.events import Event, FinalAnswer, Summarized
from store.snapshot import stored
from store.threads import ThreadStore
from tests.conftest import ROOT
from tests.test_compaction import _long
from tests.test_snapshot_store import SETTINGS, _old_thread, _say


class Model:
    """The LLM protocol: a summary for summary requests, "done" for next steps."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.summaries = 0

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> Completion:
        if schema is not summaries.SCHEMA:
            return Completion(json.dumps({"step": {"intent": "done_for_now", "message": "ok"}}))
        self.summaries += 1
        if self.fail:
            raise LLMFailed("unavailable", "the model server is down")
        tag = messages[1]["content"].split('tag="', 1)[1].split('"', 1)[0]
        return Completion(json.dumps({"summary": f"MODEL: shipped {tag}\nto production"}))


@pytest.fixture
def agent(registry: Registry) -> Agent:
    return replace(registry.agents["deploybot"], summarize="model", context_tokens=2_000)


async def _run(store: ThreadStore, agent: Agent, tid: str, llm: Model) -> list[Event]:
    lease = await store.acquire(tid, "worker", 5_000)
    assert lease is not None
    await Run(lease, agent, llm, store, SETTINGS).go()
    return (await store.thread(tid)).events


async def test_model_lines_are_stored_as_events_and_reused(
    store: ThreadStore, agent: Agent
) -> None:
    llm = Model()
    await _old_thread(store, "th_m", 30)
    await _say(store, "th_m", "deploy v3 to staging")
    log = await _run(store, agent, "th_m", llm)
    written = [e for e in log if isinstance(e, Summarized)]
    assert len(written) == summaries.MAX_PER_RUN == llm.summaries
    assert all(e.by == "model" and e.text.startswith("MODEL: shipped v1.2.") for e in written)
    assert all("\n" not in e.text for e in written)  # one line, whatever the model sent
    # The stored snapshot is the log's, model lines and all; the context shows them.
    found = await stored(store.redis, "th_m")
    assert found is not None
    thread_agent = prompts.for_thread(agent, "th_m", log)
    snap = snapshot.parse(found.body)
    assert snap == snapshot.build(thread_agent, log)
    assert {p.line for p in snap.pieces} >= {e.text for e in written}
    thread = render(thread_agent, log).messages[1]["content"]
    assert written[0].text in thread  # the oldest of them is shown as a line already
    assert f"deploy(tag=v1.2.{written[0].turn}," not in thread
    assert "summarized" not in thread  # the event itself is not shown
    info = window.describe(agent, "th_m", log)
    assert info.model_summaries == sum(e.turn < info.compacted_turns for e in written) > 0
    # The next run asks for none of those again.
    await _say(store, "th_m", "and v4")
    again = await _run(store, agent, "th_m", llm)
    assert llm.summaries == len(written)
    assert sum(isinstance(e, Summarized) for e in again) == len(written)


async def test_a_failed_model_call_falls_back_to_the_code_line_recorded(
    store: ThreadStore, agent: Agent
) -> None:
    llm = Model(fail=True)
    await _old_thread(store, "th_f", 30)
    await _say(store, "th_f", "deploy v3 to staging")
    log = await _run(store, agent, "th_f", llm)
    written = [e for e in log if isinstance(e, Summarized)]
    assert written
    assert all(e.by == "code" and "the model server is down" in (e.error or "") for e in written)
    assert written[0].text.startswith("U042 via slack: deploy v1.2.")
    answered = [e for e in log if not isinstance(e, Summarized)][-1]
    assert isinstance(answered, FinalAnswer)  # the run went on to its answer


def test_with_summarize_code_no_model_call_is_due(registry: Registry) -> None:
    agent = registry.agents["deploybot"]
    assert agent.summarize == "code"
    log = _long(30)
    assert summaries.due(agent, None, log) == []
    due = summaries.due(replace(agent, summarize="model"), None, log)
    assert [turn for turn, _ in due] == list(range(16, 24))  # the newest the cut covers


def test_summarize_is_configured_per_agent(tmp_path: Path) -> None:
    base = (ROOT / "switchboard.toml").read_text()
    assert "[agents.deploybot]\n" in base
    path = tmp_path / "switchboard.toml"
    for value, ok in (("model", True), ("code", True), ("llm", False)):
        path.write_text(
            base.replace("[agents.deploybot]\n", f'[agents.deploybot]\nsummarize = "{value}"\n')
        )
        if ok:
            assert config.load(path).agents["deploybot"].summarize == value
        else:
            with pytest.raises(ConfigError, match="summarize"):
                config.load(path)
