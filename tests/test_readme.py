"""The README documents every setting the service reads."""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings

from agent.settings import Settings
from channels.registry import channel_settings
from tests.conftest import ROOT


@pytest.mark.parametrize("settings", [Settings, *channel_settings()])
def test_readme_names_every_setting(settings: type[BaseSettings]) -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [n.upper() for n in settings.model_fields if f"`{n.upper()}`" not in readme]
    assert missing == []
