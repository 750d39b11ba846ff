"""The README and .env.example document every setting the service reads."""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings

from agent.settings import Settings
from channels.registry import channel_settings
from tests.conftest import ROOT

# Every channel's settings, as the registry knows them (REST reads the service's own).
ALL_SETTINGS = list(dict.fromkeys([Settings, *channel_settings()]))


@pytest.mark.parametrize("settings", ALL_SETTINGS)
def test_readme_names_every_setting(settings: type[BaseSettings]) -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [n.upper() for n in settings.model_fields if f"`{n.upper()}`" not in readme]
    assert missing == []


@pytest.mark.parametrize("settings", ALL_SETTINGS)
def test_env_example_lists_every_setting(settings: type[BaseSettings]) -> None:
    example = (ROOT / ".env.example").read_text()
    missing = [n.upper() for n in settings.model_fields if f"# {n.upper()}=" not in example]
    assert missing == []
