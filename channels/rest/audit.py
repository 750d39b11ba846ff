"""``GET /v1/audit`` and ``GET /v1/threads/{id}/audit``: the approvals' trail, from events."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import AwareDatetime

from agent.audit import AuditEntry, trail
from store.port import ChannelPort

AUDIT_THREADS = 200
"""``/v1/audit`` reads at most the newest this many threads (filter by thread for older)."""


def router(port: ChannelPort) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["audit"])

    @api.get("/threads/{thread_id}/audit", response_model=list[AuditEntry])
    async def thread_audit(thread_id: str) -> list[AuditEntry]:
        """Every request, offer, reminder, escalation, decision, withdrawal and expiry."""
        view = await port.thread(thread_id)
        return trail(thread_id, view.events)

    @api.get("/audit", response_model=list[AuditEntry])
    async def audit(
        thread: str | None = None,
        request: str | None = None,
        person: str | None = None,
        since: AwareDatetime | None = None,
    ) -> list[AuditEntry]:
        """The trail across threads, oldest first; ``person`` matches a person or a responder."""
        if thread:
            ids = [thread]
        else:
            ids = [s.meta.thread_id for s in await port.summaries(AUDIT_THREADS)]
        entries: list[AuditEntry] = []
        for tid in ids:
            entries += trail(tid, (await port.thread(tid)).events)
        return sorted(
            (
                e
                for e in entries
                if (request is None or e.request_id == request)
                and (person is None or person in (e.person, e.responder))
                and (since is None or e.at >= since)
            ),
            key=lambda e: e.at,
        )

    return api
