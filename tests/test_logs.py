"""telemetry.logs: the JSON and text lines, the bound context, quiet polling."""

from __future__ import annotations

import asyncio
import json
import logging

from telemetry.logs import JsonFormatter, TextFormatter, bound, collecting, current


def _record(msg: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "switchboard.t", "msg": msg, "args": args})
    record.levelname = "INFO"
    record.__dict__.update(extra)
    return record


def test_json_line_carries_the_bound_fields_and_extras() -> None:
    with bound(thread_id="th_1", agent=None), bound(request_id="rq_1"):
        line = json.loads(JsonFormatter().format(_record("hello %s", "you", call_id="c1")))
    assert line["message"] == "hello you"
    assert line["logger"] == "switchboard.t"
    assert (line["thread_id"], line["request_id"], line["call_id"]) == ("th_1", "rq_1", "c1")
    assert "agent" not in line  # None is not bound
    assert current() == {}


def test_text_line_puts_the_fields_after_the_message() -> None:
    with bound(thread_id="th_1"):
        text = TextFormatter().format(_record("hello %s", "you"))
    assert text.endswith("INFO switchboard.t: hello you [thread_id=th_1]")


async def test_tasks_started_inside_inherit_the_context() -> None:
    async def child() -> str:
        return current().get("thread_id", "")

    with bound(thread_id="th_2"):
        task = asyncio.create_task(child())
    assert await task == "th_2"


def test_collecting_gathers_what_is_bound_inside() -> None:
    with collecting() as touched:
        with bound(thread_id="th_3"), bound(request_id="rq_3"):
            pass
        assert current() == {}
    assert touched == {"thread_id": "th_3", "request_id": "rq_3"}
