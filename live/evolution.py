"""Evolution API client (httpx): send a text message and point an instance's webhook at BeaZap.

Calls retry with exponential backoff (tenacity) on timeouts, connection errors and 5xx answers;
4xx answers are final. Failures raise :class:`EvolutionError` with the status and Evolution's own
reason, which the API reports as 502. The API key travels only in the ``apikey`` header and is
never logged.
"""

from __future__ import annotations

from typing import Any

import httpx
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from core.logging import get_logger, mask_phones

log = get_logger(__name__)

DEFAULT_EVENTS = (
    "MESSAGES_UPSERT",
    "MESSAGES_UPDATE",
    "MESSAGES_DELETE",
    "MESSAGES_EDITED",
    "SEND_MESSAGE",
    "CONTACTS_UPSERT",
    "CONTACTS_UPDATE",
    "GROUPS_UPSERT",
    "GROUP_PARTICIPANTS_UPDATE",
    "CONNECTION_UPDATE",
    "CALL",
)


class EvolutionError(Exception):
    """Evolution refused or could not be reached. ``status`` is its HTTP status (None: unreachable)."""

    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _RetryableError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, _RetryableError | httpx.TimeoutException | httpx.TransportError)


def _reason(response: httpx.Response) -> str:
    """Evolution's reason for a refusal, phone numbers masked (it is shown to people and stored)."""
    return mask_phones(_raw_reason(response))


def _raw_reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        inner = body.get("response")
        if isinstance(inner, dict) and inner.get("message") is not None:
            msg = inner["message"]
            return "; ".join(str(m) for m in msg) if isinstance(msg, list) else str(msg)
        for key in ("message", "error"):
            if body.get(key):
                return str(body[key])
    return f"HTTP {response.status_code}"


class EvolutionClient:
    """One Evolution server (``base_url``) with one API key."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"apikey": api_key, "content-type": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self._attempts = max(1, attempts)
        self._backoff = backoff

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> EvolutionClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        @retry(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff, max=5),
            reraise=True,
        )
        def call() -> httpx.Response:
            response = self._client.post(path, json=body)
            if response.status_code >= 500:
                log.warning("evolution.retryable_status", status=response.status_code)
                raise _RetryableError(response)
            return response

        try:
            response = call()
        except _RetryableError as exc:
            raise EvolutionError(exc.response.status_code, _reason(exc.response)) from None
        except httpx.TimeoutException:
            raise EvolutionError(None, "Evolution API timed out") from None
        except httpx.TransportError as exc:
            raise EvolutionError(None, f"Evolution API unreachable: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise EvolutionError(response.status_code, _reason(response))
        try:
            data = response.json()
        except ValueError:
            raise EvolutionError(response.status_code, "Evolution answered with a non-JSON body") from None
        return data if isinstance(data, dict) else {"data": data}

    def send_text(self, instance: str, number: str, text: str, *, quoted_message_id: str | None = None) -> dict:
        """``POST /message/sendText/{instance}``; returns Evolution's message object (``key.id``)."""
        body: dict[str, Any] = {"number": number, "text": text}
        if quoted_message_id:
            body["quoted"] = {"key": {"id": quoted_message_id}}
        return self._post(f"/message/sendText/{instance}", body)

    def set_webhook(
        self,
        instance: str,
        url: str,
        token: str,
        *,
        events: list[str] | tuple[str, ...] = DEFAULT_EVENTS,
        by_events: bool = False,
    ) -> dict:
        """``POST /webhook/set/{instance}``: Evolution posts every event to ``url`` with our token header."""
        body = {
            "webhook": {
                "enabled": True,
                "url": url,
                "byEvents": by_events,
                "base64": False,
                "headers": {"apikey": token},
                "events": list(events),
            }
        }
        return self._post(f"/webhook/set/{instance}", body)
