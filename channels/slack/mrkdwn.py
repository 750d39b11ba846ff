"""The model's Markdown as Slack's mrkdwn: what Slack would otherwise show as literal stars.

Slack's mrkdwn is not Markdown: bold is ``*x*``, italic ``_x_``, strike ``~x~``, links
``<url|label>``, and it has no headings or tables. Models write CommonMark-ish Markdown, so
the common constructs are rewritten here, line by line; code (fenced blocks and inline
spans) is kept as is, only escaped. Slack's three control characters are escaped everywhere
before our own link syntax is added, so nothing a model writes can become a mention or a
link Slack would act on. A table-driven test (tests/slack/test_mrkdwn.py) pins each form.

Written here rather than taken from a library: the converters on PyPI
(markdown-to-mrkdwn, md2mrkdwn) are young single-maintainer packages, and none leaves
Slack's escaping to the caller in a way that keeps ``<@U…>`` from a model inert.
"""

from __future__ import annotations

import re

from channels.slack.markup import escape

_FENCE = re.compile(r"^\s*```")
_CODE_SPAN = re.compile(r"(`[^`\n]+`)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+")
_IMAGE_OR_LINK = re.compile(r"!?\[([^\]\n]*)\]\((\S+?)(?:\s+\"[^\"]*\")?\)")
_BOLD_ITALIC = re.compile(r"\*\*\*(?=\S)(.+?)(?<=\S)\*\*\*")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
_STAR = "\x01"  # bold's star while italics are rewritten (never in escaped text)


def to_mrkdwn(markdown: str) -> str:
    """Markdown in, escaped Slack mrkdwn out."""
    out: list[str] = []
    fenced = False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
            out.append("```")
        elif fenced:
            out.append(escape(line))
        else:
            out.append(_line(line))
    return "\n".join(out)


def _line(line: str) -> str:
    if _RULE.match(line):
        return "──────────"
    heading = _HEADING.match(line)
    if heading:
        return f"*{_inline(heading.group(1)).replace('*', '').replace(_STAR, '')}*"
    line = _BULLET.sub(lambda m: m.group(1) + "• ", line)
    return _inline(line)


def _inline(text: str) -> str:
    parts = _CODE_SPAN.split(text)
    for i in range(0, len(parts), 2):  # the odd parts are code spans: escaped only
        parts[i] = _styled(escape(parts[i]))
    for i in range(1, len(parts), 2):
        parts[i] = escape(parts[i])
    return "".join(parts)


def _styled(text: str) -> str:
    text = _IMAGE_OR_LINK.sub(_link, text)
    text = _BOLD_ITALIC.sub(lambda m: f"{_STAR}_{m.group(1)}_{_STAR}", text)
    text = _BOLD.sub(lambda m: _STAR + (m.group(1) or m.group(2)) + _STAR, text)
    text = _ITALIC.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    return text.replace(_STAR, "*")


def _link(match: re.Match[str]) -> str:
    label, url = match.group(1), match.group(2)
    if not re.match(r"^(https?|mailto):", url.replace("&amp;", "&")):
        return match.group(0)  # a relative or odd target: leave the text as written
    label = label.replace("|", "¦")
    return f"<{url}|{label}>" if label else f"<{url}>"
