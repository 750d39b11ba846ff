"""The thread page: a signed, expiring, read-only HTML page of one thread that needs no API
token; a forged, altered or expired link gets a 403 page that reveals nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from channels.pagelinks import PageLinks
from model.events import utcnow
from tests.conftest import Service
from tests.fakes.openai_server import FakeOpenAI, step

AUTH = {"Authorization": "Bearer s3cret"}
PUBLIC = "https://sb.example.com"


@pytest.fixture
async def guarded(
    service_factory: Callable[..., Awaitable[Service]], llm: object, fake_llm: FakeOpenAI
) -> Service:
    return await service_factory(llm, api_token="s3cret")


@pytest.fixture
def links(redis_client: aioredis.Redis) -> PageLinks:
    """Links as a sender makes them: the same key the API checks (kept in Redis)."""
    return PageLinks(redis_client, None, PUBLIC, 3600)


async def _thread(service: Service, fake_llm: FakeOpenAI) -> str:
    fake_llm.script(step("deploy", tag="v1.2.3", env="production"))
    r = await service.api.post(
        "/v1/threads",
        json={"message": "deploy v1.2.3 to <production>", "sender": "alice"},
        headers=AUTH,
    )
    tid: str = r.json()["thread_id"]
    await service.settled(tid, "awaiting_human")
    return tid


def _local(link: str | None) -> str:
    assert link is not None
    assert link.startswith(PUBLIC + "/t/")
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def test_the_signed_link_shows_the_thread_without_a_token(
    guarded: Service, fake_llm: FakeOpenAI, links: PageLinks
) -> None:
    tid = await _thread(guarded, fake_llm)
    r = await guarded.api.get(_local(await links.link(tid, utcnow())))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    page = r.text
    assert "deploy v1.2.3 to &lt;production&gt;" in page  # what the human wrote, escaped
    assert "<production>" not in page
    assert "alice wrote (via rest)" in page
    assert "Approval asked for <code>deploy</code>" in page
    assert "<td>env</td><td><code>production</code>" in page
    assert "pending, 0 of 1 approvals" in page
    assert "s3cret" not in page
    assert "sig=" not in page
    assert "out_" not in page


@pytest.mark.parametrize("change", ["forged", "other thread", "expired", "no signature", "junk"])
async def test_a_bad_link_is_refused_and_reveals_nothing(
    guarded: Service, fake_llm: FakeOpenAI, links: PageLinks, change: str
) -> None:
    tid = await _thread(guarded, fake_llm)
    good = _local(await links.link(tid, utcnow()))
    path, _, query = good.partition("?")
    exp, sig = (part.split("=", 1)[1] for part in query.split("&"))
    url = {
        "forged": f"{path}?exp={exp}&sig={'A' * len(sig)}",
        "other thread": f"/t/th_someoneelse?exp={exp}&sig={sig}",
        "expired": _local(await links.link(tid, utcnow() - timedelta(seconds=3601))),
        "no signature": f"{path}?exp={exp}",
        "junk": f"{path}?exp=soon&sig={sig}",
    }[change]
    # Pushing the expiry out voids the signature too.
    r = await guarded.api.get(url)
    assert r.status_code == 403
    assert "Link not valid" in r.text
    assert "deploy" not in r.text
    assert tid not in r.text
    later = f"{path}?exp={int(exp) + 3600}&sig={sig}"
    assert (await guarded.api.get(later)).status_code == 403


async def test_a_configured_secret_signs_differently(
    guarded: Service, fake_llm: FakeOpenAI, redis_client: aioredis.Redis
) -> None:
    """A link signed with another key (a secret the service does not hold) is refused."""
    tid = await _thread(guarded, fake_llm)
    other = PageLinks(redis_client, "another-secret-of-some-length", PUBLIC, 3600)
    r = await guarded.api.get(_local(await other.link(tid, utcnow())))
    assert r.status_code == 403


async def test_no_public_url_no_link(redis_client: aioredis.Redis) -> None:
    assert await PageLinks(redis_client, None, None, 3600).link("th_x", utcnow()) is None
