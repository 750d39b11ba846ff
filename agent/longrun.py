"""How a long-running tool says "started" instead of giving its result, and learns where to
send the result later.

- A Python tool returns ``Started(external_id)`` instead of a string; ``current()`` gives
  it the call id and its signed result URL while it runs.
- A command tool gets ``SWITCHBOARD_CALL_ID`` and ``SWITCHBOARD_RESULT_URL`` in its
  environment and prints ``{"started": "<external id>"}`` as the last line of its stdout.
- An HTTP tool gets the same two as the ``Switchboard-Call-Id`` and
  ``Switchboard-Result-Url`` headers and answers ``{"started": "<external id>"}``.

Only a tool declared ``long_running`` may answer so (for any other, the same output is just
its result): the result then comes to ``POST /v1/calls/{call_id}/result``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

ENV_CALL_ID = "SWITCHBOARD_CALL_ID"
ENV_RESULT_URL = "SWITCHBOARD_RESULT_URL"
HEADER_CALL_ID = "Switchboard-Call-Id"
HEADER_RESULT_URL = "Switchboard-Result-Url"


@dataclass(frozen=True)
class Started:
    """What a long-running tool returns: it started, the result comes later."""

    external_id: str
    """The tool's own id of the job (a CI run, a ticket), shown on the thread."""


@dataclass(frozen=True)
class CallContext:
    """The call a long-running tool is running for."""

    call_id: str
    result_url: str
    """Where the result goes: a signed URL, valid until the call's timeout has passed."""

    def env(self) -> dict[str, str]:
        return {ENV_CALL_ID: self.call_id, ENV_RESULT_URL: self.result_url}

    def headers(self) -> dict[str, str]:
        return {HEADER_CALL_ID: self.call_id, HEADER_RESULT_URL: self.result_url}


_CURRENT: ContextVar[CallContext | None] = ContextVar("switchboard_call", default=None)


def current() -> CallContext | None:
    """The long-running call being run now (None inside any other tool)."""
    return _CURRENT.get()


@contextlib.contextmanager
def calling(context: CallContext) -> Iterator[None]:
    token = _CURRENT.set(context)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def started(output: str) -> Started | None:
    """``{"started": "<id>"}`` on the output's last non-empty line, as ``Started``."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    if not lines:
        return None
    try:
        parsed = json.loads(lines[-1])
    except ValueError:
        return None
    if isinstance(parsed, dict) and isinstance(parsed.get("started"), str) and parsed["started"]:
        return Started(parsed["started"])
    return None
