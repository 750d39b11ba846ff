"""The SMS channel's settings (environment or .env): Twilio credentials and our number."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class SmsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    """Signs Twilio's webhooks and authenticates our API calls."""
    twilio_from_number: str | None = None
    """Our number, E.164: the number of agents without ``sms_numbers`` of their own (texts
    to it reach them, theirs go out from it)."""
    twilio_api_url: str | None = None
    """Only to point the client elsewhere (tests): replaces https://api.twilio.com."""
    sms_segment_budget: int = Field(default=2, ge=1, le=10)
    """Longer texts are shortened to this many SMS segments, with a link to the thread."""
    sms_timeout: float = Field(default=15.0, gt=0)

    @property
    def configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.twilio_from_number)
