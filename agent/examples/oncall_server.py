"""The on-call example's tools, as a small MCP server over stdio (the SDK's FastMCP):
``recent_errors`` and ``get_deploys`` read, ``rollback`` changes something.

It stands in for your own systems (a metrics store, a deploy log) with a made-up incident:
checkout's error rate went up after v2.4.1. It is a program of its own, started by the
service as ``python -m agent.examples.oncall_server`` and spoken to only through MCP: the
agent core never imports it. State lives in the process, so a restart of the service starts
the story again, and each agent that names the server (oncall reads, rollbacker rolls back)
starts a copy of its own, which sees only its own rollbacks.
"""

from __future__ import annotations

from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations

server = FastMCP("oncall-ops", log_level="WARNING")

_DEPLOYS: dict[str, list[tuple[str, str]]] = {
    # service: (version, when) newest first
    "checkout": [("v2.4.1", "14:02 UTC"), ("v2.4.0", "yesterday 09:30 UTC")],
    "search": [("v1.9.0", "3 days ago")],
}
_ERRORS: dict[str, list[str]] = {
    "checkout": [
        "14:05 UTC 500 POST /cart/pay: KeyError 'currency' (412 times in 10 min)",
        "14:06 UTC timeout calling payments after 30s (37 times)",
    ],
    "search": [],
}


@server.tool(annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False))
def recent_errors(service: str | None = None, minutes: int = 60) -> str:
    """Errors logged in the last minutes, for one service or all of them."""
    names = [service] if service else sorted(_ERRORS)
    lines = []
    for name in names:
        if name not in _ERRORS:
            return f"unknown service {name!r}; known: {', '.join(sorted(_ERRORS))}"
        found = _ERRORS[name]
        lines += [f"{name}: {e}" for e in found] or [f"{name}: no errors in {minutes} min"]
    return "\n".join(lines)


@server.tool(annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False))
def get_deploys(service: str) -> str:
    """The service's recent deploys, newest first."""
    if service not in _DEPLOYS:
        return f"unknown service {service!r}; known: {', '.join(sorted(_DEPLOYS))}"
    return "\n".join(f"{version} deployed {when}" for version, when in _DEPLOYS[service])


@server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
def rollback(service: str, to_version: str) -> str:
    """Roll a service back to an earlier version it ran."""
    deploys = _DEPLOYS.get(service)
    if not deploys:
        raise ValueError(f"unknown service {service!r}")
    if to_version not in [v for v, _ in deploys[1:]]:
        raise ValueError(f"{service} never ran {to_version} before {deploys[0][0]}")
    current = deploys[0][0]
    deploys.insert(0, (to_version, "just now (rollback)"))
    _ERRORS[service] = []
    return f"rolled {service} back from {current} to {to_version}"


if __name__ == "__main__":
    server.run("stdio")
