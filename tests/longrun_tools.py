"""A test agent whose Python tool runs long: it returns ``Started`` and keeps what it was
told about its call (tests/test_longrun.py)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from agent import longrun
from agent.config import ToolConfig
from agent.longrun import CallContext, Started
from agent.tools import Tool

SEEN: list[CallContext | None] = []


class Job(BaseModel):
    """Start a batch job."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str


async def start_job(args: Job) -> str | Started:
    SEEN.append(longrun.current())
    return Started(f"py-{args.name}")


def tools(config: Mapping[str, ToolConfig]) -> list[Tool]:
    return [
        Tool(
            name="start_job",
            description="Start a batch job.",
            args=Job,
            run=start_job,
            long_running=True,
            timeout=60,
        )
    ]
