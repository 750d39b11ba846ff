"""The email channel's settings, from the environment (names shared with DESIGN.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MAX_BYTES = 10 * 1024 * 1024


class EmailSettings(BaseSettings):
    """On when ``EMAIL_DOMAIN`` is set; mail goes out only when ``SMTP_RELAY_URL`` is set too."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    email_domain: str | None = None
    """Our mail domain: agents are ``<agent>@domain``, replies come to ``reply+<token>@domain``."""
    smtp_listen: str = "127.0.0.1:2525"
    """Where the inbound SMTP server listens (host:port)."""
    smtp_relay_url: SecretStr | None = None
    """Outbound relay, ``smtp://user:pass@host:port`` (``smtps://`` for implicit TLS)."""
    smtp_hostname: str | None = None
    """The name we give in our SMTP greeting and EHLO; default: the mail domain."""
    email_max_bytes: int = Field(default=DEFAULT_MAX_BYTES, ge=1024)
    """Largest message accepted (552 above it)."""
    email_secret: SecretStr | None = None
    """Key for reply tokens and approval links; unset: one is created and kept in Redis."""
    email_trusted_authserv_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Authentication-Results from these receiving hosts are believed (comma-separated).
    Without one, approvals by email reply are refused; approval links still work."""
    email_link_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    """How long a one-click approval link stays valid."""
    smtp_tls_cert: str | None = None
    smtp_tls_key: str | None = None
    """Certificate and key to offer STARTTLS on the inbound server (both or neither)."""
    smtp_auth_user: str | None = None
    smtp_auth_password: SecretStr | None = None
    """When both are set, the inbound server requires STARTTLS and then this login."""
    smtp_timeout_s: float = 30.0

    @field_validator("email_trusted_authserv_ids", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip().lower() for v in value.split(",") if v.strip()]
        return value

    @property
    def listen(self) -> tuple[str, int]:
        host, _, port = self.smtp_listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)
