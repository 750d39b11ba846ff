"""What a worker does when a run breaks: a bug goes to a human, a Redis blip is retried."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from agent.llm import OpenAILLM
from agent.runner import RunSettings
from agent.worker import INTERNAL_ERROR_NOTE
from model.events import FinalAnswer, HumanRequest, SystemNote
from tests.conftest import Service


class _Failing:
    """A model client that raises ``error`` on its first ``times`` calls, then asks ``inner``."""

    def __init__(self, inner: OpenAILLM, error: Exception, times: int) -> None:
        self.inner, self.error, self.left = inner, error, times

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
        if self.left:
            self.left -= 1
            raise self.error
        return await self.inner.complete(messages, schema)


async def _start(service: Service) -> str:
    r = await service.api.post("/v1/threads", json={"message": "what can you do?"})
    assert r.status_code == 201, r.text
    return str(r.json()["thread_id"])


async def test_an_internal_error_notes_it_and_asks_a_human(
    service_factory: Callable[..., Awaitable[Service]], llm: OpenAILLM
) -> None:
    service = await service_factory(_Failing(llm, KeyError("bug"), times=1))
    tid = await _start(service)
    view = await service.settled(tid, "awaiting_human")
    notes = [e for e in view.events if isinstance(e, SystemNote)]
    assert [(n.kind, n.text) for n in notes] == [("escalation", INTERNAL_ERROR_NOTE)]
    [question] = [r for r in view.requests if r.status == "pending"]
    assert question.request.kind == "question"
    assert [o.item.kind for o in view.outbox] == ["question"]
    assert isinstance(view.events[-1], HumanRequest)

    # The human answers; the run goes on (the model now works) and finishes.
    r = await service.api.post(
        f"/v1/requests/{question.request.request_id}", json={"answer": "try again"}
    )
    assert r.status_code == 200, r.text
    await service.settled(tid, "done")


async def test_a_redis_error_in_a_run_is_retried_not_failed(
    service_factory: Callable[..., Awaitable[Service]], llm: OpenAILLM
) -> None:
    broken = _Failing(llm, RedisConnectionError("Connection closed by server."), times=1)
    service = await service_factory(broken, run=RunSettings(lease_ttl_ms=300))
    tid = await _start(service)
    view = await service.settled(tid, "awaiting_human")
    assert not [e for e in view.events if isinstance(e, SystemNote)]
    assert broken.left == 0
    assert view.requests[0].request.text == "What would you like me to do?"
    assert not [e for e in view.events if isinstance(e, FinalAnswer)]
