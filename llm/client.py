"""The LLM client: one structured request, validated, retried with backoff, concurrency-limited.

Uses the ``openai`` package against any OpenAI-compatible server (``base_url``). A request is
retried on connection errors, timeouts, 429 and 5xx answers and on invalid answers (malformed JSON,
schema violations, values outside the allowed sets); after ``max_retries`` attempts — or when the
caller's ``deadline`` (seconds for the whole request, retries and backoff included) runs out — it
raises :class:`LLMError`: the caller marks the item failed or falls back to rules, never guesses.

``Usage`` counts what is billed: an attempt the server answered (even with an unusable answer) and
its tokens. Attempts without an answer (connection errors, timeouts) or refused with an error
status (429, 5xx) are not billed and not counted, so they never spend a tenant's daily budget.

Identical requests in flight at the same time (same model, messages, schema and token limit) are
sent once (single-flight): the others wait for that answer and get it with zero usage.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import httpx
import openai
from tenacity import RetryError, Retrying, retry_if_exception, wait_exponential_jitter

from core.logging import get_logger
from core.settings import Settings, get_settings
from llm.schemas import InvalidAnswerError

log = get_logger(__name__)
T = TypeVar("T")

_RETRYABLE = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.RateLimitError,
    openai.InternalServerError,
    InvalidAnswerError,
)


class LLMError(RuntimeError):
    """Every attempt failed (or a non-retryable error happened). ``usage`` holds what was spent."""

    def __init__(self, reason: str, usage: Usage) -> None:
        super().__init__(reason)
        self.reason = reason
        self.usage = usage


@dataclass
class Usage:
    """What one logical request cost: billed (answered) HTTP attempts and their tokens."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class LLMResult(Generic[T]):
    value: T
    model: str
    usage: Usage
    latency_ms: float
    attempts: int = 1
    raw: dict[str, Any] = field(default_factory=dict)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, _RETRYABLE)


class LLMClient:
    """A thread-safe client; ``max_concurrency`` requests are in flight at most across threads."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str = "gpt-4o-mini",
        timeout: float = 30.0,
        max_retries: int = 3,
        max_concurrency: int = 16,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        response_format: str = "json_schema",
    ) -> None:
        self.model = model
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self._flights: dict[str, Future[LLMResult[Any]]] = {}
        self._flights_lock = threading.Lock()
        if response_format not in ("json_schema", "json_object", "none"):
            raise ValueError(f"response_format must be json_schema, json_object or none, got {response_format!r}")
        self.response_format = response_format
        self.max_retries = max_retries
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._openai = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",  # local servers accept anything; the SDK requires a value
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            max_retries=0,  # retries are ours (tenacity), so invalid answers are retried the same way
            http_client=httpx.Client(
                limits=httpx.Limits(max_connections=max_concurrency * 2, max_keepalive_connections=max_concurrency)
            ),
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> LLMClient | None:
        """The configured client, or None when no LLM server is configured (rules only)."""
        settings = settings or get_settings()
        if not settings.llm_base_url:
            return None
        options: dict[str, Any] = {
            "api_key": settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            "model": settings.llm_model,
            "timeout": settings.llm_timeout_seconds,
            "max_retries": settings.llm_max_retries,
            "max_concurrency": settings.llm_max_concurrency,
            "response_format": settings.llm_response_format,
        }
        options.update(overrides)
        return cls(settings.llm_base_url, **options)

    def close(self) -> None:
        self._openai.close()

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        schema_name: str,
        schema: dict[str, Any],
        parse: Callable[[Any], T],
        max_tokens: int = 600,
        deadline: float | None = None,
    ) -> LLMResult[T]:
        """Send ``messages`` asking for JSON matching ``schema``; ``parse`` validates the decoded JSON.

        ``deadline`` bounds the whole request in seconds (attempts, backoff and waiting for an
        identical request already in flight); None = only the per-attempt timeout and retries."""
        key = _flight_key(self.model, messages, schema_name, schema, max_tokens)
        with self._flights_lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = Future()
        if not leader:
            return _follow(flight, deadline)
        try:
            result = self._complete(messages, schema_name, schema, parse, max_tokens, deadline)
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(result)
            return result
        finally:
            with self._flights_lock:
                self._flights.pop(key, None)

    def _complete(
        self,
        messages: list[dict[str, str]],
        schema_name: str,
        schema: dict[str, Any],
        parse: Callable[[Any], T],
        max_tokens: int,
        deadline: float | None,
    ) -> LLMResult[T]:
        usage = Usage()
        started = time.perf_counter()
        ends = None if deadline is None else started + deadline
        backoff = wait_exponential_jitter(
            multiplier=self.backoff_initial, max=self.backoff_max, jitter=self.backoff_initial
        )

        def wait(state: Any) -> float:
            pause = backoff(state)
            return pause if ends is None else max(0.0, min(pause, ends - time.perf_counter()))

        def stop(state: Any) -> bool:
            return state.attempt_number >= self.max_retries or (ends is not None and time.perf_counter() >= ends)

        retrying = Retrying(stop=stop, wait=wait, retry=retry_if_exception(_is_retryable), reraise=False)
        try:
            for attempt in retrying:
                with attempt:
                    remaining = None if ends is None else ends - time.perf_counter()
                    if remaining is not None and remaining <= 0:
                        raise LLMError("timeout", usage)
                    value, raw = self._attempt(messages, schema_name, schema, parse, max_tokens, usage, remaining)
                    return LLMResult(
                        value=value,
                        model=self.model,
                        usage=usage,
                        latency_ms=(time.perf_counter() - started) * 1000,
                        attempts=attempt.retry_state.attempt_number,
                        raw=raw,
                    )
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise LLMError(_describe(last), usage) from None
        except openai.APIError as exc:  # non-retryable: 400, 401, 403, 404…
            raise LLMError(_describe(exc), usage) from None
        raise LLMError("no attempt was made", usage)  # pragma: no cover - Retrying always runs once

    def _attempt(
        self,
        messages: list[dict[str, str]],
        schema_name: str,
        schema: dict[str, Any],
        parse: Callable[[Any], T],
        max_tokens: int,
        usage: Usage,
        remaining: float | None = None,
    ) -> tuple[T, dict[str, Any]]:
        with self._slots:
            extra: dict[str, Any] = {}
            if remaining is not None and remaining < self.timeout:
                extra["timeout"] = httpx.Timeout(remaining, connect=min(remaining, 5.0))
            if self.response_format == "json_schema":
                extra["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": schema_name, "schema": schema, "strict": True},
                }
            elif self.response_format == "json_object":
                extra["response_format"] = {"type": "json_object"}
            response = self._openai.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=0,
                max_tokens=max_tokens,
                **extra,
            )
        usage.requests += 1  # answered: billed, whatever the answer is worth
        if response.usage is not None:
            usage.prompt_tokens += response.usage.prompt_tokens or 0
            usage.completion_tokens += response.usage.completion_tokens or 0
        if not response.choices:
            raise InvalidAnswerError("the answer has no choices")
        choice = response.choices[0]
        if getattr(choice.message, "refusal", None):
            raise InvalidAnswerError("the model refused")
        if choice.finish_reason == "length":
            raise InvalidAnswerError("the answer was cut at max_tokens")
        content = choice.message.content or ""
        try:
            data = json.loads(content)
        except json.JSONDecodeError:
            raise InvalidAnswerError("the answer is not valid JSON") from None
        return parse(data), data if isinstance(data, dict) else {}


def _flight_key(model: str, messages: list[dict[str, str]], name: str, schema: dict[str, Any], max_tokens: int) -> str:
    doc = json.dumps([model, messages, name, schema, max_tokens], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()


def _follow(flight: Future[LLMResult[T]], deadline: float | None) -> LLMResult[T]:
    """Wait for the identical request in flight; its answer comes back with zero usage (not billed twice)."""
    try:
        result = flight.result(timeout=deadline)
    except FutureTimeout:
        raise LLMError("timeout", Usage()) from None
    except LLMError as exc:
        raise LLMError(exc.reason, Usage()) from None
    return replace(result, usage=Usage(), attempts=0)


def _describe(exc: BaseException | None) -> str:
    """A short, secret-free reason (status code / class / validation message)."""
    if exc is None:
        return "unknown error"
    if isinstance(exc, InvalidAnswerError):
        return f"invalid answer: {exc}"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIStatusError):
        return f"http {exc.status_code}"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    return type(exc).__name__
