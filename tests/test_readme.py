"""The README documents every setting the service reads."""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings

from agent.settings import Settings
from channels.email.settings import EmailSettings
from channels.slack.settings import SlackSettings
from channels.sms.settings import SmsSettings
from tests.conftest import ROOT


@pytest.mark.parametrize("settings", [Settings, SlackSettings, EmailSettings, SmsSettings])
def test_readme_names_every_setting(settings: type[BaseSettings]) -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [n.upper() for n in settings.model_fields if f"`{n.upper()}`" not in readme]
    assert missing == []


@pytest.mark.parametrize("settings", [Settings, SlackSettings, EmailSettings, SmsSettings])
def test_env_example_lists_every_setting(settings: type[BaseSettings]) -> None:
    example = (ROOT / ".env.example").read_text()
    missing = [n.upper() for n in settings.model_fields if f"# {n.upper()}=" not in example]
    assert missing == []
