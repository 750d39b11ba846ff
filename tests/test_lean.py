"""Lean routes (channels/lean.py): the hot POSTs are served ahead of FastAPI's router, and what
they decline is answered by the FastAPI route, in its own words, its body intact."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from starlette.types import Receive, Scope, Send

from agent.llm import NoLLM
from channels.lean import LeanRoute
from tests.conftest import Service

AUTH = {"Authorization": "Bearer s3cret"}


@pytest.fixture
async def guarded(service_factory: Callable[..., Awaitable[Service]]) -> Service:
    return await service_factory(NoLLM(), api_token="s3cret")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """(path, declined) for each request a lean route took."""
    seen: list[tuple[str, bool]] = []
    handle = LeanRoute.handle

    async def spy(self: LeanRoute, scope: Scope, receive: Receive, send: Send) -> None:
        await handle(self, scope, receive, send)
        seen.append((scope["path"], "switchboard.lean_declined" in scope))

    monkeypatch.setattr(LeanRoute, "handle", spy)
    return seen


async def test_a_well_formed_start_is_served_lean(
    guarded: Service, served: list[tuple[str, bool]]
) -> None:
    r = await guarded.api.post("/v1/threads", json={"message": "hi", "sender": "bob"}, headers=AUTH)
    assert r.status_code == 201
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) == {"thread_id", "duplicate"}
    assert r.json()["duplicate"] is False
    assert served == [("/v1/threads", False)]
    [tid] = await guarded.store.thread_ids()
    view = await guarded.store.thread(tid)
    assert view.meta.origin.address == "bob"


async def test_an_idempotent_retry_is_a_duplicate(guarded: Service) -> None:
    headers = {**AUTH, "Idempotency-Key": "k-1"}
    first = await guarded.api.post("/v1/threads", json={"message": "hi"}, headers=headers)
    again = await guarded.api.post("/v1/threads", json={"message": "hi"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == {"thread_id": first.json()["thread_id"], "duplicate": True}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"message": 42}, ["body", "message"]),
        ({"message": "hi", "colour": "red"}, ["body", "colour"]),
        ([], ["body"]),
    ],
)
async def test_a_body_the_model_refuses_gets_fastapis_422(
    guarded: Service, served: list[tuple[str, bool]], body: object, loc: list[str]
) -> None:
    r = await guarded.api.post("/v1/threads", json=body, headers=AUTH)
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["detail"]] == [loc]
    assert served == [("/v1/threads", True)]
    assert await guarded.store.thread_ids() == []


async def test_not_json_gets_fastapis_422(guarded: Service) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    r = await guarded.api.post("/v1/threads", content=b'{"message": ', headers=headers)
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"


async def test_a_long_idempotency_key_gets_fastapis_422(guarded: Service) -> None:
    headers = {**AUTH, "Idempotency-Key": "k" * 201}
    r = await guarded.api.post("/v1/threads", json={"message": "hi"}, headers=headers)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
    assert await guarded.store.thread_ids() == []


async def test_a_declined_request_reaches_fastapi_with_its_body(
    guarded: Service, served: list[tuple[str, bool]]
) -> None:
    headers = {**AUTH, "Content-Type": "application/json; charset=utf-8"}
    r = await guarded.api.post("/v1/threads", content=b'{"message": "hi"}', headers=headers)
    assert r.status_code == 201
    assert served == [("/v1/threads", True)]
    assert len(await guarded.store.thread_ids()) == 1


async def test_the_guard_still_comes_first(guarded: Service) -> None:
    r = await guarded.api.post("/v1/threads", json={"message": "hi"})
    assert r.status_code == 401
    big = {**AUTH, "Content-Type": "application/json"}
    r = await guarded.api.post("/v1/threads", content=b"x" * (2 << 20), headers=big)
    assert r.status_code == 413
    assert await guarded.store.thread_ids() == []


async def test_other_methods_and_paths_are_fastapis(guarded: Service) -> None:
    assert (await guarded.api.get("/v1/threads", headers=AUTH)).status_code == 200
    assert (await guarded.api.put("/v1/threads", json={}, headers=AUTH)).status_code == 405
    doc = (await guarded.api.get("/openapi.json")).json()
    assert "post" in doc["paths"]["/v1/threads"]
