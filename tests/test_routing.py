"""Each agent's own addresses, and an address two agents claim refused at start (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ConfigError
from channels.checks import _started
from tests.agents_toml import two_agents
from tests.test_config_errors import Main, main_in_process

__all__ = ["main_in_process"]  # the fixture, shared with the config error tests


@pytest.mark.parametrize(
    ("deploybot", "rollbackbot", "claimed"),
    [
        ('slack_channels = ["C0OPS"]', 'slack_channels = ["C0OPS"]', "slack:C0OPS"),
        (
            'email_addresses = ["Ops@Example.com"]',
            'email_addresses = ["ops@example.com"]',
            "email:ops@example.com",
        ),
        ('sms_numbers = ["+1 555 000 1111"]', 'sms_numbers = ["+15550001111"]', "sms:+15550001111"),
    ],
)
def test_an_address_claimed_twice_names_both_agents(
    tmp_path: Path, deploybot: str, rollbackbot: str, claimed: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        two_agents(tmp_path, deploybot, rollbackbot)
    assert str(caught.value).startswith(
        f"{claimed} is claimed by two agents, deploybot and rollbackbot"
    )


def test_owners_of_each_channel(tmp_path: Path) -> None:
    registry = two_agents(
        tmp_path,
        'slack_channels = ["C0DEPLOY"]\nsms_numbers = ["+15550001111"]',
        'slack_channels = ["C0ROLL"]\nemail_addresses = ["Roll@Example.com"]',
    )
    assert registry.owner("slack", "C0ROLL") == "rollbackbot"
    assert registry.owner("email", "roll@example.com") == "rollbackbot"
    assert registry.owner("sms", "+15550001111") == "deploybot"
    assert registry.owner("slack", "C0ELSE") is None


def test_main_check_exits_2_naming_both(tmp_path: Path, main_in_process: Main) -> None:
    two_agents(tmp_path, 'slack_channels = ["C0OPS"]', "", extra="")  # writes agents.toml
    path = tmp_path / "agents.toml"
    text = path.read_text().replace(
        "[agents.rollbackbot.settings]\n",
        '[agents.rollbackbot.settings]\nslack_channels = ["C0OPS"]\n',
    )
    path.write_text(text)
    code, line = main_in_process({"SWITCHBOARD_CONFIG": str(path)}, "check")
    assert code == 2
    assert "slack:C0OPS is claimed by two agents, deploybot and rollbackbot" in line


def test_check_names_the_triggers_and_schedules(tmp_path: Path) -> None:
    extra = """
[triggers.alert]
agent = "rollbackbot"
message = "{{ summary }}"
token = "t"
report_to = ["slack:C0ONCALL"]

[schedules.standup]
agent = "deploybot"
cron = "0 9 * * 1-5"
message = "standup"
report_to = ["slack:C0ONCALL"]
"""
    assert _started(two_agents(tmp_path, "", "", extra=extra)) == (
        "; triggers alert; schedules standup"
    )
    assert _started(two_agents(tmp_path, "", "")) == ""
