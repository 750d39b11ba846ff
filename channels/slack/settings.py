"""The Slack channel's settings, from the environment (or .env)."""

from __future__ import annotations

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SlackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    slack_bot_token: SecretStr | None = None
    """xoxb-...: the channel is on when this is set."""
    slack_signing_secret: SecretStr | None = None
    """Verifies requests to POST /slack/events (HTTP mode)."""
    slack_app_token: SecretStr | None = None
    """xapp-...: Socket Mode, for a service without a public URL."""
    slack_api_url: str = "https://slack.com/api/"
    """Only to point the client elsewhere (tests)."""
    slack_agent: str | None = None
    """The agent of DMs and of channels no agent claims (``settings.slack_channels``);
    default: the configured default agent."""

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, url: str) -> str:
        return url if url.endswith("/") else url + "/"
