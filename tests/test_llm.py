"""The OpenAI adapter against a fake server over real HTTP: what it sends, how failures map."""

from __future__ import annotations

import pytest

from agent.config import Registry
from agent.errors import LLMFailed
from agent.llm import NoLLM, OpenAILLM
from agent.reducer import next_step
from model.events import UserMessage
from tests.fakes.openai_server import Body, Delay, FakeOpenAI, Status


async def test_request_carries_strict_schema_and_rendered_context(
    llm: OpenAILLM, fake_llm: FakeOpenAI, registry: Registry
) -> None:
    agent = registry.agents["deploybot"]
    events = [UserMessage(channel="rest", sender="a", text="deploy v1.2.3 to staging")]
    decision = await next_step(agent, events, llm)
    assert decision.intent == "deploy"
    assert decision.arguments == {"tag": "v1.2.3", "env": "staging"}
    body = fake_llm.requests[0]
    assert body["model"] == "fake-model"
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == "next_step"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "deploy v1.2.3 to staging" in body["messages"][1]["content"]


@pytest.mark.parametrize(
    ("scripted", "kind"),
    [
        (Status(429), "rate_limited"),
        (Status(500), "unavailable"),
        (Status(503), "unavailable"),
        (Status(400), "refused"),
    ],
)
async def test_http_failures_map_to_error_kinds(
    llm: OpenAILLM, fake_llm: FakeOpenAI, scripted: Status, kind: str
) -> None:
    fake_llm.script(scripted)
    with pytest.raises(LLMFailed) as caught:
        await llm.complete([{"role": "user", "content": "x"}], {"type": "object"})
    assert caught.value.kind == kind
    assert len(fake_llm.requests) == 1  # no hidden SDK retries: the run loop owns retrying


async def test_timeout(fake_llm: FakeOpenAI) -> None:
    fake_llm.script(Delay(2))
    client = OpenAILLM(model="m", api_key="k", base_url=fake_llm.base_url, timeout=0.2)
    try:
        with pytest.raises(LLMFailed) as caught:
            await client.complete([{"role": "user", "content": "x"}], {"type": "object"})
    finally:
        await client.close()
    assert caught.value.kind == "timeout"


async def test_unreachable_server_is_unavailable() -> None:
    from store.embedded import free_port

    client = OpenAILLM(model="m", api_key="k", base_url=f"http://127.0.0.1:{free_port()}/v1")
    try:
        with pytest.raises(LLMFailed) as caught:
            await client.complete([{"role": "user", "content": "x"}], {"type": "object"})
    finally:
        await client.close()
    assert caught.value.kind == "unavailable"


async def test_no_llm_says_how_to_configure_one() -> None:
    with pytest.raises(LLMFailed) as caught:
        await NoLLM().complete([], {})
    assert caught.value.kind == "not_configured"
    assert "OPENAI_BASE_URL" in caught.value.error


@pytest.mark.parametrize(
    "body",
    [Body("<html>502 from the proxy</html>"), Body("not json", "application/json")],
)
async def test_a_200_that_is_no_completion_is_an_llm_error(
    llm: OpenAILLM, fake_llm: FakeOpenAI, body: Body
) -> None:
    fake_llm.script(body)
    with pytest.raises(LLMFailed) as caught:
        await llm.complete([{"role": "user", "content": "x"}], {"type": "object"})
    assert caught.value.kind == "unavailable"
    assert "not a chat completion" in caught.value.error
