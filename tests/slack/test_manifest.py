"""The Slack app manifest a user pastes: it must point Slack where the channel listens,
subscribe to what the channel handles, and grant the scopes of the methods it calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from channels.slack import http

PACKAGE = Path(__file__).resolve().parents[2] / "channels" / "slack"


def _manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PACKAGE / "manifest.yaml").read_text())
    return loaded


def test_manifest_points_at_the_events_route_and_subscribes_to_what_we_handle() -> None:
    settings = _manifest()["settings"]
    assert settings["event_subscriptions"]["request_url"].endswith(http.PATH)
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith(http.PATH)
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_mention",  # starts a thread
        "message.channels",  # replies in threads
        "message.groups",
        "message.im",  # direct messages
    }


def test_manifest_scopes_cover_the_methods_we_call() -> None:
    scopes = set(_manifest()["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "im:history", "channels:history"} <= scopes
    assert "usergroups:read" in scopes  # usergroups.users.list, for group approvers
    assert "users:read" in scopes  # users.info, who decided by name
    assert "reactions:write" in scopes  # reactions.add / remove, the "working" sign
    assert "assistant:write" in scopes  # assistant.threads.setStatus, in assistant threads
    assert _manifest()["features"]["bot_user"]["display_name"]
