"""Service settings from the environment (or a .env file); names shared by every channel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.errors import ConfigError

REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
PAGE_SECRET_MIN = 16
"""Characters a configured page secret needs at least: a short one could be guessed."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    redis_url: str | None = None
    """Redis to use; unset: an embedded server under ``switchboard_data_dir``."""
    switchboard_data_dir: Path = Path("data")

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    switchboard_model: str = "gpt-4o-mini"
    switchboard_llm_timeout: float = Field(default=60.0, gt=0)

    switchboard_api_token: SecretStr | None = None
    """The shared bearer token for /v1; its holder acts as ``api``."""
    switchboard_api_tokens: SecretStr | None = None
    """Named tokens, ``ops:<token>,oncall:<token>``: each holder acts under its name."""
    switchboard_max_body: int = Field(default=1 << 20, gt=0)
    """Largest /v1 request body, in bytes (1 MiB)."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    switchboard_api_processes: int = Field(default=1, ge=1, le=64)
    """Processes serving HTTP on ``PORT`` (``api`` and ``serve``): the first binds the port and
    runs what must run once (SMTP, Slack Socket Mode, the workers of ``serve``), each of the
    others serves the same app on that socket (main.py, channels/server.py)."""
    public_base_url: str | None = None
    switchboard_page_secret: SecretStr | None = None
    """Signs the links to a thread's read-only page (channels.pagelinks); unset: a key made
    once and kept in Redis."""
    switchboard_page_ttl: int = Field(default=7 * 24 * 3600, ge=60)
    """Seconds a thread-page link stays valid after the message that carries it."""
    switchboard_config: Path = Path("switchboard.toml")

    switchboard_partitions: int | None = Field(default=None, ge=1, le=1024)
    """Partitions of the shared streams and indexes (store.partitions reads it from the
    environment; checked here so a bad value is refused at start)."""
    switchboard_lease_ttl_ms: int = Field(default=30_000, ge=100)
    switchboard_worker_concurrency: int = Field(default=8, ge=1)
    switchboard_llm_retry_delay: float = Field(default=1.0, ge=0)
    switchboard_shutdown_grace: float = Field(default=30.0, ge=0)
    """Seconds a stopping worker waits for tools in flight before it leaves them."""
    switchboard_alive_file: Path | None = None
    """A worker touches this file about every second: the liveness signal of a healthcheck."""

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in REDIS_SCHEMES or not (parts.hostname or parts.path):
            raise ValueError(
                "not a Redis URL: use redis://host:6379/0, rediss://host:6380/0 (TLS), "
                "unix:///path/to/redis.sock or redis+cluster://host:7000 (a Redis Cluster); "
                "unset for the embedded Redis"
            )
        return url

    @field_validator("switchboard_page_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < PAGE_SECRET_MIN:
            raise ValueError(
                f"is shorter than {PAGE_SECRET_MIN} characters: give a long random value "
                "(python3 -c 'import secrets; print(secrets.token_hex(32))'), or unset it"
            )
        return value

    @field_validator("switchboard_api_token", "switchboard_api_tokens")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty token must not mean "no token": that would switch authentication off.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is set but empty: unset it (loopback only) or give a token")
        return value

    switchboard_log_format: Annotated[
        Literal["json", "text"] | None, BeforeValidator(lambda v: v.lower() if v else None)
    ] = None
    """None: text at a terminal, JSON otherwise."""
    switchboard_log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(str.upper)
    ] = "INFO"
    switchboard_metrics_port: int | None = None
    """Where ``main.py worker`` serves /metrics (the API serves it on its own port)."""

    @property
    def llm_configured(self) -> bool:
        return self.openai_api_key is not None or self.openai_base_url is not None


_SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD")


def load_settings() -> Settings:
    """The settings, or a ConfigError whose one line names the setting at fault."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """``PORT='abc': Input should be a valid integer``: one line, secrets not repeated."""
    parts = []
    for error in exc.errors():
        name = "_".join(str(x) for x in error["loc"][:1]).upper() or "settings"
        msg = error["msg"].removeprefix("Value error, ")
        if any(word in name for word in _SECRET_WORDS) or "input" not in error:
            parts.append(f"{name}: {msg}")
        else:
            parts.append(f"{name}={error['input']!r}: {msg}")
    return "; ".join(parts)
