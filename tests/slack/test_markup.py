"""Slack markup both ways, and the pure payload readers."""

from __future__ import annotations

import json

import pytest

from channels.slack import blocks, payloads
from channels.slack.markup import escape, normalize, split

BOT = "U0BOT"


@pytest.mark.parametrize(
    ("raw", "readable"),
    [
        ("<@U0BOT> deploy v1.2.3", "deploy v1.2.3"),
        ("<@U0BOT|switchboard>: hi", "hi"),
        ("ask <@U0ALICE> and <@U0BOB|bob>", "ask @U0ALICE and @bob"),
        ("see <#C0OPS|ops> or <#C0DEV>", "see #ops or #C0DEV"),
        ("<!here> <!channel> <!subteam^S0OPS|@ops> <!subteam^S0DEV>", "@here @channel @ops @S0DEV"),
        (
            "docs: <https://x.example/a?b=1&amp;c=2|the docs>",
            "docs: the docs (https://x.example/a?b=1&c=2)",
        ),
        ("<https://x.example>", "https://x.example"),
        ("<mailto:ops@example.com|ops@example.com>", "ops@example.com"),
        ("<!date^1700000000^{date}|Nov 14>", "Nov 14"),
        ("a &lt;b&gt; &amp;lt; c", "a <b> &lt; c"),
        ("  thanks <@U0BOT>  ", "thanks @U0BOT"),
    ],
)
def test_normalize(raw: str, readable: str) -> None:
    assert normalize(raw, bot_user_id=BOT) == readable


def test_escape_round_trips_with_normalize() -> None:
    text = "if a < b && c > d: <@U1> & <#C2>"
    assert escape(text) == "if a &lt; b &amp;&amp; c &gt; d: &lt;@U1&gt; &amp; &lt;#C2&gt;"
    assert normalize(escape(text)) == text


def test_split_keeps_limits_words_and_entities() -> None:
    assert split("short", 10) == ["short"]
    assert split("", 10) == [""]
    parts = split("aaaa bbbb cccc dddd", 10)
    assert parts == ["aaaa bbbb", "cccc dddd"]
    parts = split("x" * 25, 10)
    assert parts == ["x" * 10, "x" * 10, "x" * 5]
    # an entity is never cut in half
    parts = split("x" * 8 + "&amp;" + "y" * 8, 10)
    assert all(p.count("&") == p.count(";") for p in parts)
    assert "".join(parts) == "x" * 8 + "&amp;" + "y" * 8


def _callback(event: dict[str, object]) -> dict[str, object]:
    return {"type": "event_callback", "team_id": "T1", "event": event}


def test_message_reads_mentions_dms_and_replies() -> None:
    mention = {
        "type": "app_mention",
        "user": "U1",
        "text": "<@U0BOT> hi",
        "ts": "5.1",
        "channel": "C1",
    }
    msg = payloads.message(_callback(mention), BOT)
    assert msg is not None
    assert (msg.text, msg.thread_ts, msg.starts, msg.is_reply) == ("hi", "5.1", True, False)
    assert msg.conversation == "T1:C1:5.1"

    reply = {**mention, "type": "message", "text": "more", "ts": "6.1", "thread_ts": "5.1"}
    msg = payloads.message(_callback(reply), BOT)
    assert msg is not None
    assert (msg.thread_ts, msg.starts, msg.is_reply) == ("5.1", False, True)

    dm = {
        "type": "message",
        "channel_type": "im",
        "user": "U1",
        "text": "yo",
        "ts": "7.1",
        "channel": "D1",
    }
    msg = payloads.message(_callback(dm), BOT)
    assert msg is not None
    assert msg.starts

    assert payloads.message(_callback({**dm, "text": "<@U0BOT>"}), BOT) is None  # nothing said
    assert payloads.message(_callback({**dm, "subtype": "message_changed"}), BOT) is None
    assert payloads.message(_callback({**dm, "bot_id": "B1"}), BOT) is None
    assert payloads.message(_callback({**dm, "user": BOT}), BOT) is None
    assert payloads.message(_callback({**dm, "type": "reaction_added"}), BOT) is None
    assert payloads.message({"type": "event_callback"}, BOT) is None
    long = payloads.message(_callback({**dm, "text": "x" * 30_000}), BOT)
    assert long is not None
    assert len(long.text) == payloads.MAX_TEXT


def test_click_and_reason_refuse_what_is_not_ours() -> None:
    assert payloads.click({"actions": [{"action_id": "other", "value": "rq"}]}) is None
    assert payloads.click({"actions": []}) is None
    incomplete = {"actions": [{"action_id": payloads.APPROVE, "value": "rq"}], "user": {"id": "U1"}}
    assert payloads.click(incomplete) is None
    assert payloads.reason({"view": {"private_metadata": "not json"}, "user": {"id": "U1"}}) is None
    meta = json.dumps({"request_id": "rq", "channel": "C1", "message_ts": "1.1"})
    no_state = {"view": {"private_metadata": meta}, "user": {"id": "U1"}}
    assert payloads.reason(no_state) is None


def test_approval_blocks_stay_within_slack_limits() -> None:
    arguments = {f"arg{n}": "v" * 2000 for n in range(20)}
    built = blocks.approval("rq_1", "deploy", arguments)
    texts = [b["text"]["text"] for b in built if b["type"] == "section"]
    assert all(len(t) <= 3000 for t in texts)
    assert sum(t.count("• *arg") for t in texts) == 20
    lines = [line for text in texts for line in text.splitlines()]
    assert all(line.count("v") <= blocks.MAX_ARGUMENT for line in lines)  # each value shortened
    assert len(built) <= 50
