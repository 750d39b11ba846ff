"""``GET /t/{thread_id}?exp=&sig=``: one thread as a read-only HTML page, for whoever holds
the signed link an approval message carried (no API token: phones, mail clients, Slack).

The link is the credential (channels.pagelinks); a forged, altered or expired one gets the
same 403 page whether or not the thread exists, so it reveals nothing. The page shows the
timeline a person needs to decide: messages, the agent's steps, tool calls and results,
requests and decisions. It never shows provider ids, reply tokens, links or outbox details.
"""

from __future__ import annotations

import html
import json
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from agent.steps import ASK, DONE
from channels.pagelinks import PATH, PageLinks
from model.events import (
    AgentStep,
    Answered,
    ApprovalRequest,
    Approved,
    Event,
    FinalAnswer,
    LLMError,
    Offered,
    Question,
    Rejected,
    Rerouted,
    SystemNote,
    ToolError,
    ToolResult,
    UserMessage,
)
from model.records import RequestView, ThreadView, call_text
from store.errors import ThreadNotFound
from store.port import ChannelPort

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the signed link must not leak to other sites
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
FORBIDDEN = (
    "This link is not valid: it may have expired, or been copied incompletely. "
    "Ask for the request to be sent again, or open the thread in the Switchboard console."
)
SHOWN = 2000
"""Characters of one text shown (a tool's long output is cut; the console has all of it)."""
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46em;margin:1.5em auto;padding:0 1em;"
    "line-height:1.45;color:#1d1d1f}li{margin:.6em 0;list-style:none;border-left:3px solid "
    "#ccc;padding-left:.7em}.who{color:#555;font-size:.9em}pre{white-space:pre-wrap;"
    "background:#f4f4f6;padding:.4em .6em;margin:.3em 0}.pending{border-color:#d08c00}"
    ".ok{border-color:#2a8a3e}.no{border-color:#c0392b}table{border-collapse:collapse}"
    "td{padding:.1em .8em .1em 0;vertical-align:top}"
)


def _e(text: object) -> str:
    return html.escape(str(text))


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _pre(text: str) -> str:
    cut = text if len(text) <= SHOWN else text[:SHOWN] + "…"
    return f"<pre>{_e(cut)}</pre>"


def _arguments(arguments: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{_e(k)}</td><td><code>"
        f"{_e(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))}</code></td></tr>"
        for k, v in arguments.items()
    )
    return f"<table>{rows}</table>" if rows else ""


def _item(event: Event) -> tuple[str, str, str] | None:
    """(css class, who/what, body) of one event, or None for bookkeeping nobody reads."""
    match event:
        case UserMessage(channel=channel, sender=sender, text=text):
            return "", f"{_e(sender)} wrote (via {_e(channel)})", _pre(text)
        case AgentStep(intent=intent) if intent in (ASK, DONE):
            return None  # the question or answer follows as its own event
        case AgentStep(intent=intent, arguments=arguments):
            return "", f"The agent chose to call <code>{_e(intent)}</code>", _arguments(arguments)
        case ToolResult(tool=tool, output=output, outcome=outcome):
            css = "ok" if outcome == "ok" else "no"
            return css, f"Result of <code>{_e(tool)}</code> ({_e(outcome)})", _pre(output)
        case ToolError(tool=tool, error=error):
            return "no", f"<code>{_e(tool)}</code> failed", _pre(error)
        case LLMError(kind=kind):
            return "no", "The model could not answer", _e(kind)
        case Question(text=text):
            return "pending", "The agent asked", _pre(text)
        case ApprovalRequest(tool=tool, arguments=arguments, quorum=quorum):
            need = f" ({quorum} approvals needed)" if quorum > 1 else ""
            return (
                "pending",
                f"Approval asked for <code>{_e(tool)}</code>{need}",
                _arguments(arguments),
            )
        case Approved(responder=responder, channel=channel, person=person, comment=comment):
            who = person or f"{channel}:{responder}"
            return "ok", f"Approved by {_e(who)} (via {_e(channel)})", _pre(comment or "")
        case Rejected(responder=responder, channel=channel, comment=comment):
            body = _pre(comment or "no reason given")
            return "no", f"Rejected by {_e(channel)}:{_e(responder)}", body
        case Answered(responder=responder, channel=channel, answer=answer):
            return "", f"{_e(channel)}:{_e(responder)} answered", _pre(answer)
        case FinalAnswer(text=text):
            return "ok", "The agent answered", _pre(text)
        case SystemNote(text=text) | Offered(text=text) | Rerouted(text=text) if text:
            return "", "Note", _e(text)
        case _:
            return None  # delivery bookkeeping, timers


def _request(view: RequestView) -> str:
    r = view.request
    what = call_text(r.tool, r.arguments or {}) if r.tool else r.text
    count = ""
    if r.kind == "approval":
        count = f", {view.approvals_given} of {r.approvals_needed} approvals"
    deadline = f", decide by {_when(r.deadline)}" if r.deadline else ""
    return f"<li class='{'pending' if view.status == 'pending' else ''}'>" + (
        f"<code>{_e(what)}</code> — {_e(view.status)}{_e(count)}{_e(deadline)}</li>"
    )


def render(view: ThreadView) -> str:
    """The page of one thread: header, requests, then the timeline, oldest first."""
    meta = view.meta
    rows = []
    for event in view.events:
        item = _item(event)
        if item is not None:
            css, who, body = item
            rows.append(
                f"<li class='{css}'><div class='who'>{_when(event.at)} · {who}</div>{body}</li>"
            )
    requests = "".join(_request(r) for r in view.requests)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_e(meta.agent)}: thread {_e(meta.thread_id)}</title><style>{_STYLE}</style>"
        f"</head><body><h1>{_e(meta.agent)}</h1>"
        f"<p>Thread <code>{_e(meta.thread_id)}</code>, started {_when(meta.created)} via "
        f"{_e(meta.origin.channel)}; status <b>{_e(view.state.status)}</b>. "
        "Read-only: decide where the request reached you.</p>"
        + (f"<h2>Requests</h2><ul>{requests}</ul>" if requests else "")
        + f"<h2>Timeline</h2><ul>{''.join(rows)}</ul></body></html>"
    )


def _page(title: str, text: str, status: int) -> HTMLResponse:
    body = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1><p>{_e(text)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def router(port: ChannelPort, links: PageLinks) -> APIRouter:
    api = APIRouter(tags=["pages"])

    @api.get(PATH + "/{thread_id}", response_class=HTMLResponse, include_in_schema=False)
    async def thread_page(
        thread_id: str, exp: str | None = None, sig: str | None = None
    ) -> HTMLResponse:
        """The thread, read-only, for the holder of a signed link that has not expired."""
        if not await links.valid(thread_id, exp, sig, time.time()):
            return _page("Link not valid", FORBIDDEN, 403)
        try:
            view = await port.thread(thread_id)
        except ThreadNotFound:
            return _page("Thread not found", "This thread no longer exists.", 404)
        return HTMLResponse(render(view), headers=HEADERS)

    return api
