"""Context tokens: our rendered context against the same thread as OpenAI chat-messages JSON.

Counted with tiktoken's o200k_base. tiktoken downloads that BPE file on first use, which a
machine without internet cannot do; the litellm wheel ships the same file, so we fetch that
wheel with pip (not installed: only the one file is taken out of it) into bench/.tiktoken,
where tiktoken finds it by its cache name. tiktoken checks the file's SHA-256 on load, so a
wrong file cannot produce numbers. If none of this works, the token figures say so and are
left out: there is no fallback estimate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent import tokens
from agent.context import render
from agent.tools import Agent
from model.events import (
    AgentStep,
    Answered,
    Event,
    FinalAnswer,
    HumanRequest,
    HumanResponse,
    SystemNote,
    ToolError,
    ToolResult,
    UserMessage,
)

CACHE = tokens.cache_dir()
# tiktoken's cache name of o200k_base: sha1 of its download URL.
O200K = "fb374d419588a4632f3f557e76b4b70aebbca790"
WHEEL = "litellm==1.109.1"
MEMBER = f"litellm/litellm_core_utils/tokenizers/{O200K}"


def encoding() -> Any:
    """tiktoken's o200k_base, or raise RuntimeError saying why it is unavailable."""
    os.environ["TIKTOKEN_CACHE_DIR"] = str(CACHE)
    if not (CACHE / O200K).exists():
        _fetch()
    import tiktoken

    return tiktoken.get_encoding("o200k_base")


def _fetch() -> None:
    CACHE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, WHEEL],
            capture_output=True,
            text=True,
            check=False,
        )
        wheels = list(Path(tmp).glob("litellm-*.whl"))
        if done.returncode or not wheels:
            raise RuntimeError(f"o200k_base unavailable offline: pip download failed: {done}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            (CACHE / O200K).write_bytes(wheel.read(MEMBER))


def as_chat_messages(events: Sequence[Event]) -> list[dict[str, Any]]:
    """The thread as a chat-completions app would keep it (system prompt excluded).

    Lean on purpose: approvals and their answers leave no message (the tool result
    follows), and the final answer is the assistant's message once, not twice.
    """
    out: list[dict[str, Any]] = []
    for e in events:
        if isinstance(e, UserMessage):
            out.append({"role": "user", "content": e.text})
        elif isinstance(e, AgentStep) and e.call_id:
            call = {"name": e.intent, "arguments": json.dumps(e.arguments)}
            out.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": e.call_id, "type": "function", "function": call}],
                }
            )
        elif isinstance(e, AgentStep):
            out.append({"role": "assistant", "content": str(e.arguments.get("message", ""))})
        elif isinstance(e, ToolResult):
            out.append({"role": "tool", "tool_call_id": e.call_id, "content": e.output})
        elif isinstance(e, ToolError):
            out.append({"role": "tool", "tool_call_id": e.call_id or "", "content": e.error})
        elif isinstance(e, Answered):
            out.append({"role": "user", "content": e.answer})
        elif isinstance(e, SystemNote):
            out.append({"role": "system", "content": e.text})
        elif isinstance(e, HumanRequest | FinalAnswer | HumanResponse):
            continue
    return out


def compare(agent: Agent, events: Sequence[Event], enc: Any) -> dict[str, Any]:
    """Tokens of the thread part and of the whole request (same system prompt on both sides)."""
    ours = render(agent, events).messages
    system, thread = ours[0]["content"], ours[1]["content"]
    theirs = as_chat_messages(events)
    ours_thread = len(enc.encode(thread))
    theirs_thread = len(enc.encode(json.dumps(theirs)))
    ours_total = len(enc.encode(json.dumps(ours)))
    theirs_total = len(enc.encode(json.dumps([{"role": "system", "content": system}, *theirs])))
    return {
        "events": len(events),
        "ours_thread": ours_thread,
        "messages_json_thread": theirs_thread,
        "thread_ratio": round(ours_thread / theirs_thread, 3),
        "ours_total": ours_total,
        "messages_json_total": theirs_total,
        "total_ratio": round(ours_total / theirs_total, 3),
    }
