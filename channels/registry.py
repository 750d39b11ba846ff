"""Which channels are on, and what each plugs into the service.

A channel is a package under channels/ with ``build(services) -> Channel | None``: None when
its settings are absent (the channel is simply off). The service mounts each channel's HTTP
routes in the API process(es), hands its sender to the outbox in the worker process, and runs
its long-lived tasks beside the API: a listening socket of its own (the SMTP port) is bound
once and served by every API process, as the HTTP port is; a connection out (Socket Mode)
runs once.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis
from fastapi import FastAPI
from pydantic_settings import BaseSettings

from agent.config import Registry
from agent.delivery import Sender
from agent.settings import Settings
from store.port import ChannelPort

log = logging.getLogger("switchboard.channels")

# Channel packages, in the order they are reported. REST is always on.
CHANNEL_MODULES: tuple[str, ...] = (
    "channels.rest",
    "channels.slack",
    "channels.email",
    "channels.sms",
)


@dataclass(frozen=True)
class Services:
    """What a channel may use: the port into the core, Redis for its own keys (named in its
    own keys module, never a core key), and the configuration."""

    settings: Settings
    redis: aioredis.Redis
    port: ChannelPort
    registry: Registry


class SharedListener(Protocol):
    """A port of a channel's own (SMTP), bound once, by the first API process, and served by
    each process that serves HTTP on the socket it was handed: the kernel gives each new
    connection to whichever process accepts it first, so the load spreads over the cores."""

    def bind(self) -> socket.socket:
        """The listening socket; a port that cannot be had raises ConfigError."""
        ...

    async def serve(self, sock: socket.socket, stop: asyncio.Event) -> None:
        """Serve on ``sock`` until the service stops, then close it (this process's copy)."""
        ...


@dataclass
class Channel:
    name: str
    sender: Sender | None = None
    mount: Callable[[FastAPI], None] | None = None
    listeners: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = field(
        default_factory=list
    )
    """Long-running inbound tasks, each given the service's stop event; run once, in the
    first API process however many serve HTTP (a Socket Mode connection is opened once)."""
    shared: list[SharedListener] = field(default_factory=list)
    """Ports of its own, served in every process that serves HTTP (``SharedListener``)."""
    per_process: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = field(
        default_factory=list
    )
    """Tasks beside the HTTP server in every process that serves it (its own open streams)."""
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


class ChannelFactory(Protocol):
    def __call__(self, services: Services) -> Channel | None: ...


def channel_settings(modules: tuple[str, ...] = CHANNEL_MODULES) -> list[type[BaseSettings]]:
    """Each channel's settings class (its ``SETTINGS``): what the README must document."""
    return [importlib.import_module(name).SETTINGS for name in modules]


def build_channels(services: Services, modules: tuple[str, ...] = CHANNEL_MODULES) -> list[Channel]:
    channels = []
    for name in modules:
        factory: ChannelFactory = importlib.import_module(name).build
        channel = factory(services)
        if channel is None:
            log.info("channel %s: off (not configured)", name.rsplit(".", 1)[-1])
        else:
            channels.append(channel)
    return channels
