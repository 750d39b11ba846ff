"""API access (channels/rest/auth.py): tokens and named tokens, the token checked before the
body, the body limit, the Host allow-list, and the OpenAPI document that says so."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from agent import config
from agent.llm import NoLLM, OpenAILLM
from agent.settings import Settings
from channels.rest.auth import (
    Access,
    AccessGuard,
    CallerDep,
    TokenSpecError,
    host_name,
    parse_named,
)
from model.events import HumanResponse
from store import keys
from tests.conftest import ROOT, Service

SHARED = {"Authorization": "Bearer s3cret"}
OPS = {"Authorization": "Bearer tok-ops-123"}
ONCALL = {"Authorization": "Bearer tok-oncall-456"}
NAMED = {"ops": "tok-ops-123", "oncall": "tok-oncall-456"}


@pytest.fixture
async def guarded(service_factory: Callable[..., Awaitable[Service]]) -> Service:
    return await service_factory(NoLLM(), access=Access(shared="s3cret", named=NAMED))


# ---- tokens --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("ops:a1", {"ops": "a1"}),
        (" ops : a1 , oncall:b2 ,", {"ops": "a1", "oncall": "b2"}),
        ("ops:with:colon", {"ops": "with:colon"}),
    ],
)
def test_named_tokens_parse(spec: str, named: dict[str, str]) -> None:
    assert parse_named(spec) == named


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("ops", "'ops' has no token: write name:token"),
        ("ops:", "'ops' has no token: write name:token"),
        ("ops:a,ops:b", "'ops' is named twice"),
        ("ops:a,oncall:a", "'oncall' has the same token as another name"),
        ("api:a", "'api' is the shared token's name; pick another"),
        ("no one:a", "'no one' is not a name (letters, digits, . _ -)"),
        (",", "no name:token pair"),
    ],
)
def test_unclear_named_tokens_are_refused(spec: str, problem: str) -> None:
    with pytest.raises(TokenSpecError) as caught:
        parse_named(spec)
    assert caught.value.problem == problem


@pytest.mark.parametrize("name", ["switchboard_api_token", "switchboard_api_tokens"])
def test_an_empty_token_is_refused_not_read_as_none(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name.upper(), "  ")
    with pytest.raises(ValidationError, match="is set but empty"):
        Settings(_env_file=None)  # type: ignore[call-arg]


async def test_each_token_is_accepted_and_others_refused(guarded: Service) -> None:
    for headers in (SHARED, OPS, ONCALL):
        assert (await guarded.api.get("/v1/threads", headers=headers)).status_code == 200
    wrong = {"Authorization": "Bearer tok-ops-12"}
    assert (await guarded.api.get("/v1/threads", headers=wrong)).status_code == 401


async def test_a_named_token_speaks_under_its_name(guarded: Service) -> None:
    r = await guarded.api.post("/v1/threads", json={"message": "hi"}, headers=OPS)
    assert r.status_code == 201, r.text
    view = await guarded.store.thread(r.json()["thread_id"])
    assert (view.meta.origin.channel, view.meta.origin.address) == ("rest", "ops")
    # ... and cannot claim another name, nor can the shared token claim a token's name
    r = await guarded.api.post("/v1/threads", json={"message": "hi", "sender": "x"}, headers=OPS)
    assert r.status_code == 403
    r = await guarded.api.post(
        "/v1/threads", json={"message": "hi", "sender": "oncall"}, headers=SHARED
    )
    assert r.status_code == 403
    assert len(await guarded.store.thread_ids()) == 1


async def test_a_decision_with_a_named_token_is_recorded_as_that_name(
    tmp_path: Path,
    service_factory: Callable[..., Awaitable[Service]],
    llm: OpenAILLM,
) -> None:
    toml = (ROOT / "switchboard.toml").read_text().replace('["rest:*"]', '["rest:ops"]')
    (tmp_path / "switchboard.toml").write_text(toml)
    registry = config.load(tmp_path / "switchboard.toml")
    access = Access(shared="s3cret", named=NAMED)
    service = await service_factory(llm, access=access, reg=registry)
    r = await service.api.post(
        "/v1/threads", json={"message": "deploy v1.2.3 to production"}, headers=SHARED
    )
    tid = r.json()["thread_id"]
    view = await service.settled(tid, "awaiting_human")
    rid = view.requests[0].request.request_id
    approve = {"decision": "approve"}
    for headers, body in [
        (SHARED, approve),  # acts as "api": not rest:ops
        (SHARED, {**approve, "responder": "ops"}),  # claiming the name is not having the token
        (ONCALL, approve),
    ]:
        r = await service.api.post(f"/v1/requests/{rid}", json=body, headers=headers)
        assert r.status_code == 403, r.text
    r = await service.api.post(f"/v1/requests/{rid}", json=approve, headers=OPS)
    assert r.status_code == 200, r.text
    view = await service.settled(tid, "done")
    [answer] = [e for e in view.events if isinstance(e, HumanResponse)]
    assert (answer.channel, answer.responder) == ("rest", "ops")


# ---- the token before the body, and the body limit ---------------------------------------
class _Body:
    """A streamed request body that counts how much of it the server read."""

    def __init__(self, chunks: int, size: int = 64 * 1024) -> None:
        self.chunks, self.size, self.read = chunks, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.read += 1
            yield b"x" * self.size


async def test_the_token_is_checked_before_the_body_is_read(guarded: Service) -> None:
    body = _Body(chunks=800)  # 50 MiB
    r = await guarded.api.post("/v1/threads", content=body, headers={"Authorization": "Bearer no"})
    assert r.status_code == 401
    assert body.read <= 1  # httpx may take the first chunk before the answer comes back


async def test_a_body_over_the_limit_is_413(
    service_factory: Callable[..., Awaitable[Service]],
) -> None:
    service = await service_factory(NoLLM(), access=Access(shared="s3cret", max_body=1000))
    big = {"message": "x" * 2000}
    r = await service.api.post("/v1/threads", json=big, headers=SHARED)
    assert r.status_code == 413
    streamed = _Body(chunks=100, size=600)  # no Content-Length: cut off after the limit
    r = await service.api.post("/v1/threads", content=streamed, headers=SHARED)
    assert r.status_code == 413
    assert streamed.read <= 3
    assert await service.store.thread_ids() == []
    r = await service.api.post("/v1/threads", json={"message": "small"}, headers=SHARED)
    assert r.status_code == 201


# ---- Host allow-list -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:8000", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("[::1]", "::1"),
        ("SB.Example.com", "sb.example.com"),
    ],
)
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


async def test_without_a_token_only_loopback_and_the_public_host_are_served(
    service_factory: Callable[..., Awaitable[Service]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://sb.example.com/base")
    access = Access.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    service = await service_factory(NoLLM(), access=access)
    for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "sb.example.com"):
        r = await service.api.get("/v1/threads", headers={"Host": host})
        assert r.status_code == 200, host
    for host in ("rebound.attacker.example", "127.0.0.1.attacker.example:8000"):
        r = await service.api.get("/v1/threads", headers={"Host": host})
        assert r.status_code == 400, host
        assert (await service.api.get("/", headers={"Host": host})).status_code == 400


# ---- refusals that used to be 500s or left traces ----------------------------------------
@pytest.mark.parametrize(
    "body",
    ['{"message": "\\ud800"}', '{"message": "hi", "sender": "\\udfff x"}'],
)
async def test_a_lone_surrogate_is_422_not_500(guarded: Service, body: str) -> None:
    headers = {**SHARED, "content-type": "application/json"}
    r = await guarded.api.post("/v1/threads", content=body, headers=headers)
    assert r.status_code == 422, r.text
    assert "\\ud" in r.text  # the input echoed, escaped
    assert await guarded.store.thread_ids() == []


async def test_a_message_to_a_missing_thread_wakes_nothing(guarded: Service) -> None:
    async def last_added() -> object:  # a worker may have consumed and deleted an entry
        return (await guarded.store.redis.xinfo_stream(keys.RUNS))["last-generated-id"]

    before = await last_added()
    r = await guarded.api.post(
        "/v1/threads/th_missing/messages", json={"message": "hello?"}, headers=SHARED
    )
    assert r.status_code == 404
    assert await last_added() == before


# ---- the OpenAPI document and offline docs -------------------------------------------------
async def test_openapi_declares_bearer_and_refusals(guarded: Service) -> None:
    doc = (await guarded.api.get("/openapi.json")).json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "SWITCHBOARD_API_TOKEN(S)",
    }
    answer = doc["paths"]["/v1/requests/{request_id}"]["post"]
    assert answer["security"] == [{"HTTPBearer": []}]
    assert {"401", "403", "404", "409", "413", "422", "503"} <= set(answer["responses"])
    assert "404" in doc["paths"]["/v1/threads/{thread_id}/messages"]["post"]["responses"]


async def test_docs_work_offline(guarded: Service) -> None:
    for page in ("/docs", "/redoc"):
        html = (await guarded.api.get(page)).text
        assert "cdn." not in html
        assert "/static-offline-docs/" in html
    js = await guarded.api.get("/static-offline-docs/swagger-ui-bundle.js")
    assert js.status_code == 200
    assert len(js.content) > 100_000


async def test_a_route_outside_the_guarded_prefixes_cannot_ask_who_called() -> None:
    app = FastAPI()
    app.add_middleware(AccessGuard, access=Access(shared="s3cret", prefixes=("/v1", "/ops")))

    @app.get("/ops/whoami")
    async def whoami(caller: CallerDep) -> str:
        return caller.name

    @app.get("/open/whoami")
    async def open_whoami(caller: CallerDep) -> str:
        return caller.name

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        assert (await client.get("/ops/whoami")).status_code == 401
        assert (await client.get("/ops/whoami", headers=SHARED)).json() == "api"
        assert (await client.get("/open/whoami", headers=SHARED)).status_code == 500
