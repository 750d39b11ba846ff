"""Approval policies in switchboard.toml: durations, stage order, who may be asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config
from agent.errors import ConfigError
from agent.policy import parse_duration
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("4h", 14400), ("2d", 172800), (5, 5)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["15", "1w", "-3s", "soon", True])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def _load(
    tmp_path: Path, policy: str, approvers: str = '["slack:U01", "sms:+15550001111"]'
) -> config.Registry:
    text = (ROOT / "switchboard.toml").read_text()
    text = text.replace('approvers = ["rest:*"]', f"approvers = {approvers}\n{policy}")
    path = tmp_path / "switchboard.toml"
    path.write_text(text)
    return config.load(path)


ROUTE = """
[agents.deploybot.tools.deploy.approval]
route = [{ notify = ["slack:U01"] }, { notify = ["sms:+15550001111"], after = "15m" }]
remind_every = "10m"
deadline = "4h"
on_deadline = "reject"
"""


def test_a_route_is_where_approvals_go(tmp_path: Path) -> None:
    tool = _load(tmp_path, ROUTE).agents["deploybot"].tools["deploy"]
    assert [str(a) for a in tool.notify] == ["slack:U01", "sms:+15550001111"]
    assert tool.approval is not None
    assert [s.after for s in tool.approval.route] == [0, 900]
    assert (tool.approval.remind_every, tool.approval.deadline) == (600, 14400)


def test_a_route_may_ask_in_a_slack_channel(tmp_path: Path) -> None:
    """A channel is a place, not a person: asked there, the request mentions the approvers."""
    policy = ROUTE.replace('{ notify = ["slack:U01"] }', '{ notify = ["slack:C0OPS"] }')
    tool = _load(tmp_path, policy).agents["deploybot"].tools["deploy"]
    assert [str(a) for a in tool.notify] == ["slack:C0OPS", "sms:+15550001111"]


@pytest.mark.parametrize(
    ("policy", "error"),
    [
        (ROUTE.replace('"sms:+15550001111"]', '"sms:+15559999999"]'), "not one of the approvers"),
        (ROUTE.replace('deadline = "4h"', 'deadline = "10m"'), "before the deadline"),
        (ROUTE.replace('after = "15m"', 'after = "1x"'), "duration"),
        (ROUTE.replace('on_deadline = "reject"', 'on_deadline = "approve"'), "on_deadline"),
        (
            ROUTE.replace('{ notify = ["slack:U01"] }', '{ notify = ["slack:U01"], after = "1m" }'),
            "at once",
        ),
    ],
)
def test_bad_policies_are_refused_at_start(tmp_path: Path, policy: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        _load(tmp_path, policy)


def test_editable_and_grants_are_read(tmp_path: Path) -> None:
    policy = ROUTE + 'editable = ["env"]\ngrants = ["thread"]\n'
    approval = _load(tmp_path, policy).agents["deploybot"].tools["deploy"].approval
    assert approval is not None
    assert (approval.editable, approval.grants) == (["env"], ["thread"])


@pytest.mark.parametrize(
    ("setting", "error"),
    [
        ('editable = ["region"]', "editable names no argument of the tool: region"),
        ('editable = ["env", "env"]', "twice"),
        ('grants = ["forever"]', "grants"),
    ],
)
def test_bad_edit_and_grant_settings_are_refused(tmp_path: Path, setting: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        _load(tmp_path, ROUTE + setting + "\n")


def test_rest_star_covers_a_named_rest_address(tmp_path: Path) -> None:
    policy = '[agents.deploybot.tools.deploy.approval]\nroute = [{ notify = ["rest:ops"] }]\n'
    tool = _load(tmp_path, policy, '["rest:*"]').agents["deploybot"].tools["deploy"]
    assert [str(a) for a in tool.notify] == ["rest:ops"]


def test_people_map_addresses_to_names(tmp_path: Path) -> None:
    people = '\n[people.alice]\nslack = "U01"\nsms = "+15550001111"\n'
    agent = _load(tmp_path, ROUTE + "quorum = 2\n" + people).agents["deploybot"]
    assert agent.people == {"slack:U01": "alice", "sms:+15550001111": "alice"}
    assert agent.tools["deploy"].approval is not None
    assert agent.tools["deploy"].approval.quorum == 2


def test_an_address_of_two_people_is_refused(tmp_path: Path) -> None:
    people = '\n[people.alice]\nslack = "U01"\n\n[people.bob]\nslack = "U01"\n'
    with pytest.raises(ConfigError, match="belongs to both alice and bob"):
        _load(tmp_path, ROUTE + people)
