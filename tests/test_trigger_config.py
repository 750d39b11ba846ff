"""A trigger's configuration: one credential, from the file, the environment or .env."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agent import triggers
from agent.triggers import TriggerConfig

BASE = {"agent": "deploybot", "message": "{{ text }}", "report_to": ["slack:C0ONCALL"]}


def test_a_secret_env_is_read_from_the_environment_or_dot_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("SB_FROM_DOT_ENV=from-the-file\n")
    monkeypatch.setenv("SB_FROM_ENV", "from-the-environment")
    triggers.from_env.cache_clear()
    try:
        on_env = TriggerConfig.model_validate({**BASE, "secret_env": "SB_FROM_ENV"})
        on_file = TriggerConfig.model_validate({**BASE, "token_env": "SB_FROM_DOT_ENV"})
        unset = TriggerConfig.model_validate({**BASE, "secret_env": "SB_NOWHERE"})
        assert on_env.credential() == ("secret", "from-the-environment")
        assert on_file.credential() == ("token", "from-the-file")
        assert unset.credential() == ("secret", None)
    finally:
        triggers.from_env.cache_clear()


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({}, "give exactly one of secret, secret_env, token, token_env"),
        ({"secret": "a", "token": "b"}, "given: secret, token"),
        ({"token": "b", "message": "{{ unclosed"}, "message template: unexpected end"),
        ({"token": "b", "report_to": []}, "report_to"),
        ({"token": "b", "report_to": ["slak:C0"]}, "unknown channel 'slak'"),
    ],
)
def test_a_wrong_trigger_is_refused(extra: dict[str, object], error: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TriggerConfig.model_validate({**BASE, **extra})
    assert error in str(caught.value)
