"""The REST channel: the JSON API (and the console's live stream), and a sender that keeps
messages on the thread. Always on; its access rules (tokens, body limit, Host allow-list)
come from the service's own settings."""

from __future__ import annotations

from fastapi import FastAPI

from agent.config import Registry
from agent.settings import Settings
from channels import lean
from channels.pagelinks import PageLinks, page_links
from channels.registry import Channel, Services
from channels.rest import audit, live, page, triggers
from channels.rest.api import lean_start, router
from channels.rest.auth import Access
from channels.rest.sender import RestSender
from store.port import ChannelPort

SETTINGS = Settings
"""The settings this channel reads (the service's own: SWITCHBOARD_API_TOKEN(S), ...)."""


def build(services: Services) -> Channel:
    access = Access.from_settings(services.settings)
    links = page_links(services.settings, services.redis)
    return rest_channel(services.port, services.registry, access, links)


def rest_channel(
    port: ChannelPort, registry: Registry, access: Access, links: PageLinks | None = None
) -> Channel:
    """The channel from its parts (tests build it this way); ``links`` checks the signed
    links of the thread pages (default: the key kept in Redis)."""
    links = links or page_links(Settings(), port.digests.redis)

    def mount(app: FastAPI) -> None:
        app.include_router(router(port, registry, access))
        app.include_router(audit.router(port))
        app.include_router(triggers.router(port, registry))
        app.include_router(page.router(port, links))
        lean.serve(app, "POST", "/v1/threads", lean_start(port, registry))

    return Channel(name="rest", sender=RestSender(), mount=mount, per_process=[live.end_streams_on])
