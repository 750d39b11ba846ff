"""``POST /v1/triggers/{name}``: a signed webhook starts a thread that reports to Slack; a
forged, stale, oversized or malformed one is refused with nothing stored; a repeated
delivery is stored once and answered with the first one's thread."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from agent.config import Registry
from channels.rest.triggers import signature
from model.events import Answered, FinalAnswer, ToolResult, UserMessage
from tests.agents_toml import two_agents
from tests.conftest import Service
from tests.slack.kit import ALICE, SlackKit

ONCALL = "C0ONCALL"
SECRET = "whsec-test-0123456789"
TOKEN = "trigger-token-abcdef"

TRIGGERS = f"""
[triggers.release]
agent = "rollbackbot"
message = "deploy {{{{ release.tag }}}} to {{{{ release.env }}}}"
secret = "{SECRET}"
dedupe = "header:X-GitHub-Delivery"
report_to = ["slack:{ONCALL}"]

[triggers.alert]
agent = "deploybot"
message = "Alert {{{{ alert.id }}}}: {{{{ alert.summary }}}}"
secret_env = "SB_TEST_ALERT_SECRET"
timestamp_header = "X-Timestamp"
max_age_s = 300
dedupe = "alert.id"
max_bytes = 2048
report_to = ["slack:{ONCALL}"]

[triggers.form]
agent = "deploybot"
message = "{{{{ text }}}}"
token = "{TOKEN}"
report_to = ["slack:{ONCALL}"]
"""


@pytest.fixture
def slack_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("SB_TEST_ALERT_SECRET", SECRET)
    return two_agents(tmp_path, "", "", approvers=(f"slack:{ALICE}",), extra=TRIGGERS)


async def _post(
    kit: SlackKit, name: str, payload: object, *, signed: str | None = SECRET, **headers: str
) -> tuple[int, dict[str, object]]:
    body = json.dumps(payload).encode()
    sent = {"Content-Type": "application/json", **headers}
    if signed is not None:
        sent["X-Hub-Signature-256"] = signature(signed, body, headers.get("X-Timestamp"))
    r = await kit.http.post(f"/v1/triggers/{name}", content=body, headers=sent)
    return r.status_code, r.json()


async def _keys(redis: aioredis.Redis) -> list[bytes]:
    return sorted(await redis.keys("sb:*"))


RELEASE = {"release": {"tag": "v1.2.3", "env": "production"}}


async def test_a_signed_trigger_asks_and_answers_in_its_report_to_channel(
    slack_kit: SlackKit, slack_service: Service
) -> None:
    code, body = await _post(slack_kit, "release", RELEASE, **{"X-GitHub-Delivery": "d-1"})
    assert code == 202, body
    tid = str(body["thread_id"])
    view = await slack_service.settled(tid, "awaiting_human")
    assert view.meta.agent == "rollbackbot"
    assert view.meta.origin.target == f"slack:{ONCALL}"
    [message] = [e for e in view.events if isinstance(e, UserMessage)]
    assert (message.channel, message.sender, message.text) == (
        "trigger",
        "release",
        "deploy v1.2.3 to production",
    )
    # Nobody started it: the approval goes to the report_to channel, with its buttons.
    [approval] = slack_kit.fake.thread(ONCALL, None)
    assert approval.text == "<@U0ALICE> Approval needed: deploy(tag='v1.2.3', env='production')"
    [request] = view.requests
    rid = request.request.request_id
    r = await slack_kit.click(ALICE, "sb_approve", rid, ONCALL, approval.ts, approval.ts)
    assert r.status_code == 200, r.text
    view = await slack_service.settled(tid, "done")
    await slack_kit.settle()
    [result] = [e for e in view.events if isinstance(e, ToolResult)]
    assert result.output == "rollbackbot deployed"
    final = [e for e in view.events if isinstance(e, FinalAnswer)][-1]
    posted = slack_kit.fake.thread(ONCALL, None)
    assert [p.text for p in posted][-1] == final.text == "Done: rollbackbot deployed"


async def test_a_repeated_delivery_is_stored_once_on_the_first_thread(
    slack_kit: SlackKit, slack_service: Service
) -> None:
    headers = {"X-GitHub-Delivery": "d-2"}
    code, first = await _post(slack_kit, "release", RELEASE, **headers)
    assert (code, first["duplicate"]) == (202, False)
    code, again = await _post(slack_kit, "release", RELEASE, **headers)
    assert (code, again) == (202, {"thread_id": first["thread_id"], "duplicate": True})
    view = await slack_service.settled(str(first["thread_id"]), "awaiting_human")
    assert len([e for e in view.events if isinstance(e, UserMessage)]) == 1
    assert len(slack_kit.fake.thread(ONCALL, None)) == 1
    # The payload's own id works the same way.
    stamp = str(int(time.time()))
    alert = {"alert": {"id": "a-7", "summary": "disk full"}}
    one = await _post(slack_kit, "alert", alert, **{"X-Timestamp": stamp})
    two = await _post(slack_kit, "alert", alert, **{"X-Timestamp": stamp})
    assert one[0] == two[0] == 202
    assert one[1]["thread_id"] == two[1]["thread_id"]
    assert two[1]["duplicate"] is True


async def test_a_token_trigger_takes_its_bearer_token_only(
    slack_kit: SlackKit, slack_service: Service
) -> None:
    code, body = await _post(
        slack_kit, "form", {"text": "hello"}, signed=None, Authorization=f"Bearer {TOKEN}"
    )
    assert code == 202, body
    code, body = await _post(
        slack_kit, "form", {"text": "hello"}, signed=None, Authorization="Bearer wrong"
    )
    assert (code, body["detail"]) == (401, "missing or wrong bearer token")


@pytest.mark.parametrize(
    ("name", "payload", "kw", "code", "detail"),
    [
        ("nope", RELEASE, {}, 404, "no trigger 'nope'"),
        ("release", RELEASE, {"signed": "forged"}, 401, "missing or wrong X-Hub-Signature-256"),
        ("release", RELEASE, {"signed": None}, 401, "missing or wrong X-Hub-Signature-256"),
        (
            "alert",
            {"alert": {"id": "a-1", "summary": "x"}},
            {"X-Timestamp": str(int(time.time()) - 3600)},
            401,
            "stale request: X-Timestamp is more than 300s off",
        ),
        (
            "alert",
            {"alert": {"id": "a-1", "summary": "x" * 4000}},
            {"X-Timestamp": str(int(time.time()))},
            413,
            "body larger than 2048 bytes",
        ),
        ("release", [1, 2], {"X-GitHub-Delivery": "d-3"}, 422, "the body must be a JSON object"),
        (
            "release",
            {"release": {"tag": "v1"}},
            {"X-GitHub-Delivery": "d-4"},
            422,
            "message template: 'dict object' has no attribute 'env'",
        ),
        ("release", RELEASE, {}, 422, "no header:X-GitHub-Delivery to dedupe by"),
    ],
)
async def test_a_refused_delivery_stores_nothing(
    slack_kit: SlackKit,
    redis_client: aioredis.Redis,
    name: str,
    payload: object,
    kw: dict[str, str],
    code: int,
    detail: str,
) -> None:
    before = await _keys(redis_client)
    got, body = await _post(slack_kit, name, payload, **kw)
    assert (got, body["detail"]) == (code, detail)
    assert await _keys(redis_client) == before


async def test_a_question_in_the_report_to_channel_is_answered_in_its_slack_thread(
    slack_kit: SlackKit, slack_service: Service
) -> None:
    code, body = await _post(
        slack_kit, "form", {"text": "hello"}, signed=None, Authorization=f"Bearer {TOKEN}"
    )
    assert code == 202, body
    tid = str(body["thread_id"])
    await slack_service.settled(tid, "awaiting_human")
    [question] = slack_kit.fake.thread(ONCALL, None)
    assert question.text == "What would you like me to do?"
    reply = {
        "type": "message",
        "user": ALICE,
        "text": "nothing, thanks",
        "ts": slack_kit.fake.next_ts(),
        "thread_ts": question.ts,
        "channel": ONCALL,
        "channel_type": "channel",
    }
    r = await slack_kit.event(reply)
    assert r.status_code == 200, r.text
    view = await slack_service.settled(tid, "done")
    [answer] = [e for e in view.events if isinstance(e, Answered)]
    assert (answer.responder, answer.answer) == (ALICE, "nothing, thanks")
