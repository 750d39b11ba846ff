"""REST API edges: access, validation, clear refusals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from agent.llm import NoLLM
from tests.conftest import Service

AUTH = {"Authorization": "Bearer s3cret"}


@pytest.fixture
async def guarded(service_factory: Callable[..., Awaitable[Service]]) -> Service:
    return await service_factory(NoLLM(), api_token="s3cret")


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}]
)
async def test_token_required_when_configured(guarded: Service, headers: dict[str, str]) -> None:
    r = await guarded.api.post("/v1/threads", json={"message": "hi"}, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert await guarded.store.thread_ids() == []
    assert (await guarded.api.get("/v1/requests", headers=headers)).status_code == 401


async def test_token_accepted(guarded: Service) -> None:
    r = await guarded.api.post("/v1/threads", json={"message": "hi"}, headers=AUTH)
    assert r.status_code == 201
    assert (await guarded.api.get("/healthz")).json() == {"status": "ok"}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": ""},
        {"message": "x" * 20_001},
        {"message": "hi", "colour": "red"},
        {"message": 42},
    ],
)
async def test_invalid_bodies_are_422(guarded: Service, body: object) -> None:
    r = await guarded.api.post("/v1/threads", json=body, headers=AUTH)
    assert r.status_code == 422
    assert await guarded.store.thread_ids() == []


async def test_unknown_agent_is_422(guarded: Service) -> None:
    r = await guarded.api.post(
        "/v1/threads", json={"message": "hi", "agent": "nobody"}, headers=AUTH
    )
    assert r.status_code == 422
    assert "nobody" in r.json()["detail"]


async def test_missing_things_are_404(guarded: Service) -> None:
    r = await guarded.api.get("/v1/threads/th_missing", headers=AUTH)
    assert r.status_code == 404
    assert "th_missing" in r.json()["detail"]
    r = await guarded.api.post(
        "/v1/threads/th_missing/messages", json={"message": "hi"}, headers=AUTH
    )
    assert r.status_code == 404
    r = await guarded.api.post("/v1/requests/rq_missing", json={"answer": "x"}, headers=AUTH)
    assert r.status_code == 404


@pytest.mark.parametrize(
    "body",
    [{"decision": "maybe"}, {"decision": "approve", "answer": "x"}, {"answer": ""}, {}],
)
async def test_malformed_answers_are_422(guarded: Service, body: object) -> None:
    r = await guarded.api.post("/v1/requests/rq_any", json=body, headers=AUTH)
    assert r.status_code == 422


async def test_idempotency_key_makes_launch_safe_to_retry(guarded: Service) -> None:
    headers = {**AUTH, "Idempotency-Key": "launch-1"}
    first = await guarded.api.post("/v1/threads", json={"message": "hi"}, headers=headers)
    again = await guarded.api.post("/v1/threads", json={"message": "hi"}, headers=headers)
    assert first.json()["thread_id"] == again.json()["thread_id"]
    assert again.json()["duplicate"] is True
    assert len(await guarded.store.thread_ids()) == 1


async def test_openapi_is_served(guarded: Service) -> None:
    spec = (await guarded.api.get("/openapi.json")).json()
    assert "/v1/requests/{request_id}" in spec["paths"]
    assert (await guarded.api.get("/docs")).status_code == 200


async def test_console_and_thread_list(guarded: Service) -> None:
    page = await guarded.api.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    script = (await guarded.api.get("/console/console.js")).text
    assert "/v1/stream" in script
    assert "innerHTML" not in script  # user text is only ever set as textContent
    assert "localStorage" not in script  # the token lives for the tab's session only
    assert (await guarded.api.get("/console/console.css")).status_code == 200
    r = await guarded.api.post("/v1/threads", json={"message": "hi", "sender": "bob"}, headers=AUTH)
    listed = (await guarded.api.get("/v1/threads", headers=AUTH)).json()
    assert [(t["meta"]["thread_id"], t["meta"]["origin"]["address"]) for t in listed] == [
        (r.json()["thread_id"], "bob")
    ]


async def test_session_and_agents_for_the_console(guarded: Service) -> None:
    assert (await guarded.api.get("/v1/session")).status_code == 401
    session = (await guarded.api.get("/v1/session", headers=AUTH)).json()
    assert session == {"auth": "token", "operator": "api"}
    agents = (await guarded.api.get("/v1/agents", headers=AUTH)).json()
    assert [(a["name"], a["default"]) for a in agents] == [("deploybot", True)]
    assert (await guarded.api.get("/v1/stream")).status_code == 401
