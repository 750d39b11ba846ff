"""The LLM behind ``next_step``: a small Protocol, and the OpenAI-compatible adapter.

Only this module imports the openai SDK. Any server that speaks the chat completions API
with structured outputs works (OpenAI, vLLM, Ollama, LiteLLM...).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol, cast, get_args

import openai
from openai.types.chat import ChatCompletion
from opentelemetry import trace

from agent.errors import LLMFailed
from model.events import LLMErrorKind
from telemetry import metrics, tracing

log = logging.getLogger("switchboard.llm")


@dataclass(frozen=True)
class Usage:
    """What one model call cost, as its response reported it."""

    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: int | None = None


@dataclass(frozen=True)
class Completion:
    """The model's answer: JSON text that should match the schema, and what it cost."""

    text: str
    usage: Usage | None = None


NOT_A_COMPLETION = "the model server answered 200 with a body that is not a chat completion"


class LLM(Protocol):
    """Completes chat messages into JSON text that should match ``schema``."""

    async def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any]
    ) -> Completion: ...


class NoLLM:
    """Stands in when no model is configured: every run records a clear error instead."""

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> Completion:
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
        for kind in get_args(LLMErrorKind):  # every kind at zero, so a dashboard sees 0
            metrics.MODEL_ERRORS.labels(model, kind)

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> Completion:
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": self.model,
        }
        started = time.perf_counter()
        with tracing.span(
            f"chat {self.model}", attributes=attributes, kind=trace.SpanKind.CLIENT
        ) as span:
            try:
                completion = await self._complete(messages, schema, span)
            except LLMFailed as exc:
                metrics.MODEL_ERRORS.labels(self.model, exc.kind).inc()
                span.set_attribute("error.type", exc.kind)
                log.warning("model call failed (%s): %s", exc.kind, exc.error)
                raise
            finally:
                metrics.MODEL_CALL_SECONDS.labels(self.model).observe(time.perf_counter() - started)
        return completion

    async def _complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any], span: trace.Span
    ) -> Completion:
        started = time.perf_counter()
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
        usage = self._usage(response, span, started)
        if not response.choices:
            raise LLMFailed("invalid_output", "the model returned no choices")
        message = response.choices[0].message
        if getattr(message, "refusal", None):
            raise LLMFailed("refused", str(message.refusal)[:300])
        if not message.content:
            raise LLMFailed("invalid_output", "the model returned an empty message")
        return Completion(text=str(message.content), usage=usage)

    def _usage(self, response: Any, span: trace.Span, started: float) -> Usage:
        """Count the tokens and put them on the span (GenAI semantic conventions)."""
        counted = response.usage
        usage = Usage(
            model=str(response.model or self.model),
            input_tokens=counted.prompt_tokens if counted else None,
            output_tokens=counted.completion_tokens if counted else None,
            latency_ms=round((time.perf_counter() - started) * 1000),
        )
        if usage.input_tokens is not None:
            metrics.MODEL_TOKENS.labels(self.model, "input").inc(usage.input_tokens)
            span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
        if usage.output_tokens is not None:
            metrics.MODEL_TOKENS.labels(self.model, "output").inc(usage.output_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        span.set_attribute("gen_ai.response.model", usage.model)
        if response.id:
            span.set_attribute("gen_ai.response.id", str(response.id))
        reasons = [str(c.finish_reason) for c in response.choices or [] if c.finish_reason]
        span.set_attribute("gen_ai.response.finish_reasons", reasons)
        return usage

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
