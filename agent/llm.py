"""The LLM behind ``next_step``: a small Protocol, and the OpenAI-compatible adapter.

Only this module imports the openai SDK. Any server that speaks the chat completions API
with structured outputs works (OpenAI, vLLM, Ollama, LiteLLM...).
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import openai
from openai.types.chat import ChatCompletion

from agent.errors import LLMFailed
from model.events import LLMErrorKind

NOT_A_COMPLETION = "the model server answered 200 with a body that is not a chat completion"


class LLM(Protocol):
    """Completes chat messages into JSON text that should match ``schema``."""

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> str: ...


class NoLLM:
    """Stands in when no model is configured: every run records a clear error instead."""

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
        raise LLMFailed(
            "not_configured",
            "no language model is configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for a "
            "self-hosted server)",
        )


class OpenAILLM:
    """Chat completions with a strict ``json_schema`` response format."""

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None,
        timeout: float = 60.0,
        max_retries: int = 0,
    ) -> None:
        # Retries are ours to own: a failed call becomes an error event in the thread, and the
        # run loop decides whether to go on. The SDK retrying silently would hide that.
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "unused",
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
        )
        self.model = model

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
        try:
            response = await self._client.chat.completions.create(
                model=self.model,
                messages=cast(Any, messages),
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "next_step", "strict": True, "schema": schema},
                },
            )
        except openai.APITimeoutError:
            raise LLMFailed("timeout", "the model did not answer in time") from None
        except openai.RateLimitError as exc:
            raise LLMFailed(
                "rate_limited", f"rate limited by the model server ({exc.status_code})"
            ) from None
        except openai.APIStatusError as exc:
            kind: LLMErrorKind = "unavailable" if exc.status_code >= 500 else "refused"
            raise LLMFailed(kind, f"model server answered HTTP {exc.status_code}") from None
        except openai.APIConnectionError:
            raise LLMFailed("unavailable", "could not reach the model server") from None
        except (ValueError, openai.APIResponseValidationError):
            # A 200 whose body is not JSON (JSONDecodeError is a ValueError) or not shaped
            # like a completion: a proxy or a broken server, not the model's answer.
            raise LLMFailed("unavailable", NOT_A_COMPLETION) from None
        if not isinstance(response, ChatCompletion):  # a non-JSON body comes back as text
            raise LLMFailed("unavailable", NOT_A_COMPLETION)
        if not response.choices:
            raise LLMFailed("invalid_output", "the model returned no choices")
        message = response.choices[0].message
        if getattr(message, "refusal", None):
            raise LLMFailed("refused", str(message.refusal)[:300])
        if not message.content:
            raise LLMFailed("invalid_output", "the model returned an empty message")
        return str(message.content)

    async def probe(self) -> str:
        """``main.py check --live``: the server answers and knows our model."""
        try:
            models = [m.id async for m in self._client.models.list()]
        except openai.APIStatusError as exc:
            raise LLMFailed(
                "unavailable", f"model server answered HTTP {exc.status_code}"
            ) from None
        except openai.APIConnectionError:
            raise LLMFailed("unavailable", "could not reach the model server") from None
        if self.model not in models:
            raise LLMFailed("refused", f"the server does not offer model {self.model!r}")
        return f"{self.model} offered ({len(models)} models)"

    async def close(self) -> None:
        await self._client.close()
