"""Markdown to Slack mrkdwn, form by form."""

from __future__ import annotations

import pytest

from channels.slack.mrkdwn import to_mrkdwn


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("plain text", "plain text"),
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("***both***", "*_both_*"),
        ("~~gone~~", "~gone~"),
        ("# Title", "*Title*"),
        ("### A **bold** heading ##", "*A bold heading*"),
        ("- one\n* two\n  + nested", "• one\n• two\n  • nested"),
        ("1. first\n2. second", "1. first\n2. second"),
        ("[docs](https://example.com/a?b=1&c=2)", "<https://example.com/a?b=1&amp;c=2|docs>"),
        ("![chart](https://example.com/c.png)", "<https://example.com/c.png|chart>"),
        ("[a|b](https://x.io)", "<https://x.io|a¦b>"),
        ("[local](./file.md)", "[local](./file.md)"),
        ("`**not bold**` and `a<b`", "`**not bold**` and `a&lt;b`"),
        ("```python\nx = 2 ** 3 < 9\n```", "```\nx = 2 ** 3 &lt; 9\n```"),
        ("<@U0ALICE> & <!channel>", "&lt;@U0ALICE&gt; &amp; &lt;!channel&gt;"),
        ("2 * 3 * 4", "2 * 3 * 4"),
        ("snake_case_name", "snake_case_name"),
        ("---", "──────────"),
    ],
)
def test_markdown_forms(markdown: str, mrkdwn: str) -> None:
    assert to_mrkdwn(markdown) == mrkdwn
