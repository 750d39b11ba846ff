"""An MCP server written with the SDK's FastMCP, for the tests: over stdio when run as a
script (``python tests/fakes/mcp_server.py``), or over streamable HTTP in the test's process
(``http_server()``).

Tools: ``search`` (read-only hint), ``get_status``, ``restart`` (destructive hint; appends a
line to ``$MCP_FAKE_LOG`` so a test sees how often it ran), ``tally`` (a free-form map, which
strict mode cannot take), ``enable_extra`` (adds ``extra`` and says the list changed), and
``crash`` (the process exits mid-call).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import ToolAnnotations

TOKEN = "t0ken"


def build() -> FastMCP:
    server = FastMCP("ops", log_level="WARNING")

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def search(query: str, limit: int | None = None) -> str:
        """Search the incident notes."""
        hits = [f"note about {query} #{n}" for n in range(1, 4)]
        return "\n".join(hits[: limit or len(hits)])

    @server.tool()
    def get_status(service: str) -> str:
        """The current status of a service."""
        return f"{service}: degraded (error rate 7%)"

    @server.tool(annotations=ToolAnnotations(destructiveHint=True, readOnlyHint=False))
    def restart(service: str, reason: str = "") -> str:
        """Restart a service."""
        log = os.environ.get("MCP_FAKE_LOG")
        if log:
            with Path(log).open("a") as f:
                f.write(f"restart {service} {reason}\n")
        return f"restarted {service}"

    @server.tool()
    def tally(counts: dict[str, int]) -> str:
        """Add up counts."""
        return str(sum(counts.values()))

    @server.tool()
    async def enable_extra(ctx: Context[Any, Any, Any]) -> str:
        """Offer one more tool."""

        def extra(word: str) -> str:
            """Echo a word."""
            return word.upper()

        server.add_tool(extra, name="extra")
        await ctx.session.send_tool_list_changed()
        return "extra enabled"

    @server.tool()
    def crash() -> str:
        """End the server's process."""
        os._exit(3)

    return server


class RequireToken:
    """ASGI middleware: the MCP endpoint answers only with ``Authorization: Bearer <TOKEN>``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != f"Bearer {TOKEN}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"no token"})
                return
        await self.app(scope, receive, send)


def http_app() -> Any:
    """The server's streamable HTTP app (at /mcp), behind the token check."""
    return RequireToken(build().streamable_http_app())


if __name__ == "__main__":
    build().run("stdio")
