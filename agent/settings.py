"""Service settings from the environment (or a .env file); names shared by every channel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    redis_url: str | None = None
    """Redis to use; unset: an embedded server under ``switchboard_data_dir``."""
    switchboard_data_dir: Path = Path("data")

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    switchboard_model: str = "gpt-4o-mini"
    switchboard_llm_timeout: float = 60.0

    switchboard_api_token: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str | None = None
    switchboard_config: Path = Path("switchboard.toml")

    switchboard_lease_ttl_ms: int = 30_000
    switchboard_worker_concurrency: int = 8
    switchboard_llm_retry_delay: float = 1.0

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
