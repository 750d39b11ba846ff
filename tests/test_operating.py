"""Operating it: a real API process and a real worker process, after an approval round trip.

Their /metrics are scraped as Prometheus would, and their JSON logs read line by line: every
line about the thread carries its id, and a console polling the API adds no INFO lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from store.embedded import free_port
from tests.fakes.openai_server import FakeOpenAI
from tests.process import ServiceProcess, ask_and_approve, model_env, poll, service_process

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass(frozen=True)
class RoundTrip:
    api: ServiceProcess
    worker: ServiceProcess
    thread_id: str
    request_id: str


def scrape(service: ServiceProcess) -> Samples:
    text = httpx.get(f"{service.base}/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def lines(service: ServiceProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in service.log().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def round_trip(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, _fake_openai: FakeOpenAI
) -> Iterator[RoundTrip]:
    _fake_openai.reset()
    redis.Redis.from_url(redis_url).flushall()
    env = {"REDIS_URL": redis_url, **model_env(_fake_openai.base_url)}
    metrics_port = free_port()
    with (
        service_process(tmp_path_factory.mktemp("api"), env, args=("api",)) as api,
        service_process(
            tmp_path_factory.mktemp("worker"),
            {**env, "SWITCHBOARD_METRICS_PORT": str(metrics_port)},
            args=("worker",),
            port=metrics_port,
        ) as worker,
    ):
        base = api.base
        tid, rid = ask_and_approve(base)
        # Answering twice is refused (409): one refusal for the metrics to count.
        assert (
            httpx.post(f"{base}/v1/requests/{rid}", json={"decision": "approve"}).status_code == 409
        )

        def settled() -> bool:
            body = httpx.get(f"{base}/v1/threads/{tid}").json()
            sent = all(o["status"] == "sent" for o in body["outbox"])
            return body["state"]["status"] == "done" and sent and len(body["outbox"]) == 2

        poll(settled)
        poll(lambda: any("run ended: done" in line for line in worker.log().splitlines()))
        yield RoundTrip(api, worker, tid, rid)


def test_api_metrics_count_the_round_trip(round_trip: RoundTrip) -> None:
    api = scrape(round_trip.api)
    assert value(api, "switchboard_threads_started_total", agent="deploybot", channel="rest") == 1
    assert value(api, "switchboard_inbound_total", channel="rest", outcome="accepted") == 1
    assert value(api, "switchboard_inbound_refused_total", channel="rest", reason="409") == 1
    assert (
        value(api, "switchboard_decision_seconds_count", kind="approval", decision="approve") == 1
    )
    assert value(api, "switchboard_requests_pending", agent="deploybot", kind="approval") == 0
    assert value(api, "switchboard_redis_errors_total", where="api") == 0
    # The worker's series are the worker's: the API ran no model.
    assert ("switchboard_model_call_seconds_count", frozenset({("model", "fake-model")})) not in api


def test_worker_metrics_count_the_round_trip(round_trip: RoundTrip) -> None:
    w = scrape(round_trip.worker)
    step = {"agent": "deploybot", "prompt": "deploybot/v1"}
    assert value(w, "switchboard_steps_total", intent="deploy", **step) == 1
    assert value(w, "switchboard_steps_total", intent="done_for_now", **step) == 1
    assert value(w, "switchboard_model_call_seconds_count", model="fake-model") == 2
    assert value(w, "switchboard_model_tokens_total", model="fake-model", direction="input") == 2
    assert value(w, "switchboard_model_tokens_total", model="fake-model", direction="output") == 2
    assert value(w, "switchboard_tool_runs_total", tool="deploy", outcome="ok") == 1
    assert value(w, "switchboard_tool_run_seconds_count", tool="deploy") == 1
    assert value(w, "switchboard_requests_total", agent="deploybot", kind="approval") == 1
    assert value(w, "switchboard_outbox_deliveries_total", channel="rest", kind="approval") == 1
    assert value(w, "switchboard_outbox_deliveries_total", channel="rest", kind="final") == 1
    assert value(w, "switchboard_outbox_retries_total", channel="rest") == 0
    assert value(w, "switchboard_outbox_failures_total", channel="rest", status="failed") == 0
    assert value(w, "switchboard_outbox_reroutes_total", channel="rest") == 0
    runs = {"agent": "deploybot"}
    assert value(w, "switchboard_run_seconds_count", outcome="awaiting_human", **runs) == 1
    assert value(w, "switchboard_run_seconds_count", outcome="done", **runs) == 1
    assert value(w, "switchboard_escalations_total", agent="deploybot") == 0
    assert value(w, "switchboard_reminders_total", agent="deploybot") == 0
    assert value(w, "switchboard_withdrawals_total", agent="deploybot") == 0
    assert value(w, "switchboard_lease_takeovers_total") == 0
    assert value(w, "switchboard_requests_expired_total") == 0
    assert value(w, "switchboard_redis_errors_total", where="worker") == 0
    # Read from Redis at scrape time: the worker knows the API's requests too.
    assert value(w, "switchboard_requests_pending", agent="deploybot", kind="approval") == 0
    assert value(w, "switchboard_model_errors_total", model="fake-model", kind="timeout") == 0


def test_token_usage_is_on_each_step_and_summed(round_trip: RoundTrip) -> None:
    body = httpx.get(f"{round_trip.api.base}/v1/threads/{round_trip.thread_id}").json()
    steps = [e for e in body["events"] if e["type"] == "agent_step"]
    assert [(s["input_tokens"], s["output_tokens"], s["model"]) for s in steps] == [
        (1, 1, "fake-model"),
        (1, 1, "fake-model"),
    ]
    assert all(s["latency_ms"] >= 0 for s in steps)
    assert body["usage"] == {"steps": 2, "input_tokens": 2, "output_tokens": 2}


def test_every_line_about_the_thread_carries_its_id(round_trip: RoundTrip) -> None:
    tid, rid = round_trip.thread_id, round_trip.request_id
    api, worker = lines(round_trip.api), lines(round_trip.worker)
    thread_loggers = {"switchboard.run", "switchboard.tools", "switchboard.inbound"}
    thread_loggers |= {"switchboard.outbox", "switchboard.llm"}
    about = [
        line
        for line in api + worker
        if line["logger"] in thread_loggers or tid in str(line) or rid in str(line)
    ]
    assert about
    assert [line for line in about if line.get("thread_id") != tid] == []

    said = [f"{line['logger']}: {line['message']}" for line in about]
    expected = [
        "switchboard.inbound: thread created for deploybot from rest:api",
        "switchboard.run: step decided: deploy",
        "switchboard.run: approval requested: Approval needed: deploy(",
        "switchboard.outbox: approval delivered to rest:api",
        "switchboard.inbound: approval decided: approve by rest:api",
        "switchboard.tools: tool deploy ran in",
        "switchboard.run: step decided: done_for_now",
        "switchboard.run: final answer: Done: deployed v1.2.3 to production",
        "switchboard.outbox: final delivered to rest:api",
    ]
    for start in expected:
        assert any(s.startswith(start) for s in said), (start, said)
    runs = [line for line in worker if line["message"].startswith("run ended")]
    assert len(runs) == 2
    assert all(line["agent"] == "deploybot" and line["worker"] for line in runs)
    decided = next(line for line in api if line["message"].startswith("approval decided"))
    assert decided["request_id"] == rid
    assert decided["responder"] == "api"
    assert decided["auth"] == "loopback (no API token)"  # how the decider was verified
    # The API's access lines say which thread each request touched.
    posts = [
        line
        for line in api
        if line["logger"] == "switchboard.access" and '"POST ' in line["message"]
    ]
    assert [(line["message"].split('"')[1], line["thread_id"]) for line in posts] == [
        ("POST /v1/threads HTTP/1.1", tid),
        (f"POST /v1/requests/{rid} HTTP/1.1", tid),
        (f"POST /v1/requests/{rid} HTTP/1.1", tid),
    ]


def test_console_polling_adds_no_info_lines(round_trip: RoundTrip) -> None:
    base, tid = round_trip.api.base, round_trip.thread_id
    before = len(lines(round_trip.api))
    for _ in range(5):
        for path in ("/", "/v1/threads", f"/v1/threads/{tid}", "/v1/requests?status=pending"):
            assert httpx.get(f"{base}{path}").status_code == 200
    httpx.get(f"{base}/v1/threads/th_nope")  # a failed GET is still worth a line
    poll(lambda: len(lines(round_trip.api)) > before)  # uvicorn logs once it has answered
    after = [line["message"] for line in lines(round_trip.api)[before:]]
    assert len(after) == 1
    assert after[0].endswith('"GET /v1/threads/th_nope HTTP/1.1" 404')
