"""Which agent owns an address: each agent's Slack channels, mail addresses and phone numbers.

An agent lists its own addresses in ``[agents.<name>.settings]`` (``slack_channels``,
``email_addresses``, ``sms_numbers``); a message to one of them goes to that agent, anything
else to the channel's fallback (``SLACK_AGENT``, the default agent). An address two agents
claim could only be routed by guessing, so it is refused when the configuration loads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agent.errors import ConfigError
from agent.tools import Agent

SLACK_CHANNELS = "slack_channels"
EMAIL_ADDRESSES = "email_addresses"
SMS_NUMBERS = "sms_numbers"

OWN_ADDRESSES: dict[str, str] = {
    "slack": SLACK_CHANNELS,
    "email": EMAIL_ADDRESSES,
    "sms": SMS_NUMBERS,
}
"""Channel -> the agent setting that lists the agent's own addresses on it."""

_NOT_DIGITS = re.compile(r"[\s().-]")


def normal(channel: str, address: str) -> str:
    """One spelling per address, so the same one written twice is seen as the same: mail in
    lower case, phone numbers without spaces or dashes; Slack ids as they are."""
    address = address.strip()
    if channel == "email":
        return address.lower()
    if channel == "sms":
        return _NOT_DIGITS.sub("", address)
    return address


def own(settings: Mapping[str, Any], channel: str) -> list[str]:
    """The agent's own addresses on ``channel``, normalized; empty when it lists none."""
    value = settings.get(OWN_ADDRESSES[channel])
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [normal(channel, str(v)) for v in items if str(v).strip()]


def owners(agents: Mapping[str, Agent]) -> dict[str, str]:
    """``channel:address`` -> agent, over every agent's own addresses.

    Raises ConfigError naming both agents when two claim the same address.
    """
    found: dict[str, str] = {}
    for name, agent in agents.items():
        for channel in OWN_ADDRESSES:
            for address in own(agent.settings, channel):
                target = f"{channel}:{address}"
                first = found.setdefault(target, name)
                if first != name:
                    raise ConfigError(
                        f"{target} is claimed by two agents, {first} and {name} "
                        f"(settings.{OWN_ADDRESSES[channel]}): give it to one"
                    )
    return found


def by_channel(agents: Mapping[str, Agent], channel: str) -> dict[str, str]:
    """Address -> agent for one channel (its ``channel:`` prefix taken off)."""
    prefix = f"{channel}:"
    return {t.removeprefix(prefix): a for t, a in owners(agents).items() if t.startswith(prefix)}
