"""A deployment of two agents, each at its own addresses, for the multi-agent tests."""

from __future__ import annotations

from pathlib import Path

from agent import config
from agent.config import Registry

_AGENT = """
[agents.{name}]
module = "agent.examples.deploybot"
prompt = "deploybot/v1"

[agents.{name}.settings]
{settings}

[agents.{name}.tools.list_tags]
command = ["{{python}}", "-c", "print('v1.2.3')"]

[agents.{name}.tools.deploy]
command = ["{{python}}", "-c", "print('{name} deployed')", "{{tag}}", "{{env}}"]
{deploy}

[agents.{name}.tools.rollback]
command = ["{{python}}", "-c", "print('rolled back')"]
"""


def two_agents(
    tmp_path: Path,
    deploybot: str,
    rollbackbot: str,
    approvers: tuple[str, ...] = ("rest:*",),
    extra: str = "",
    deploy: dict[str, str] | None = None,
) -> Registry:
    """``deploybot`` (the default) and ``rollbackbot``, each with these settings lines; the
    deploy tool of each takes ``approvers``, or its lines in ``deploy`` (by agent)."""
    listed = "[" + ", ".join(f'"{a}"' for a in approvers) + "]"
    text = 'default_agent = "deploybot"\n'
    for name, settings in (("deploybot", deploybot), ("rollbackbot", rollbackbot)):
        lines = (deploy or {}).get(name, f"approvers = {listed}")
        text += _AGENT.format(name=name, settings=settings, deploy=lines)
    path = tmp_path / "agents.toml"
    path.write_text(text + extra)
    return config.load(path)
