"""Shared pieces of the operational API: the store/lake handles, error translation, models."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from fastapi import HTTPException, Request, status
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Engine

from core.settings import Settings, get_settings
from live.evolution import EvolutionClient, EvolutionError
from storage.db import get_engine
from storage.ops_repo import ConflictError, EvolutionCredentials, InvalidError, NotFoundError

F = TypeVar("F", bound=Callable[..., Any])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or invalid token"},
    403: {"description": "token scope too low"},
    404: {"description": "not found (or another tenant's id)"},
    409: {"description": "conflicting concurrent change"},
    422: {"description": "invalid request"},
}


def engine_of(request: Request) -> Engine:
    return getattr(request.app.state, "engine", None) or get_engine()


def settings_of(request: Request) -> Settings:
    return getattr(request.app.state, "settings", None) or get_settings()


def evolution_factory(request: Request) -> Callable[[EvolutionCredentials], EvolutionClient]:
    """How routes build Evolution clients (tests may set ``app.state.evolution_transport``)."""
    settings = settings_of(request)
    transport = getattr(request.app.state, "evolution_transport", None)

    def make(creds: EvolutionCredentials) -> EvolutionClient:
        return EvolutionClient(
            creds.base_url,
            creds.api_key,
            timeout=settings.evolution_timeout_seconds,
            attempts=settings.evolution_retries,
            transport=transport,
        )

    return make


def translate_errors(func: F) -> F:
    """Turn repository/service errors into JSON HTTP errors (404/409/422/502)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NotFoundError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        except ConflictError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        except InvalidError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        except EvolutionError as exc:
            where = f"HTTP {exc.status}" if exc.status else "unreachable"
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Evolution API error ({where}): {exc.reason}") from None

    return wrapper  # type: ignore[return-value]


# ----------------------------------------------------------------------------- request models
class PatchModel(BaseModel):
    """Base of every PATCH body: an omitted field stays as it is, an explicit ``null`` clears it —
    allowed only for the fields in ``nullable``; a null for any other field answers 422 (it would
    otherwise reach a NOT NULL column)."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _no_null_for_required(cls, data: Any) -> Any:
        if isinstance(data, dict):
            bad = sorted(k for k, v in data.items() if v is None and k in cls.model_fields and k not in cls.nullable)
            if bad:
                raise ValueError(f"{', '.join(bad)} cannot be null (omit a field to leave it unchanged)")
        return data


# ----------------------------------------------------------------------------- response models
class InstanceOut(BaseModel):
    id: str
    account_id: str
    display_name: str | None = None
    evolution_base_url: str | None = None
    evolution_api_key_set: bool = Field(description="Whether an Evolution API key is stored (never returned).")
    evolution_instance_uuid: str | None = None
    timezone: str
    business_hours: Any = None
    sla_policy: dict[str, Any] | None = None
    routing: dict[str, Any] | None = None
    active: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None


class InstanceCreated(InstanceOut):
    webhook_token: str = Field(description="Shown once: Evolution must send it in the `apikey` header.")


class TeamOut(BaseModel):
    id: str
    instance_id: str
    name: str
    created_at: datetime | None = None
    updated_at: datetime | None = None


class AttendantOut(BaseModel):
    id: str
    instance_id: str
    team_id: str | None = None
    name: str
    email: str | None = None
    capacity: int
    available: bool
    active: bool
    last_assigned_at: datetime | None = None
    open_conversations: int = 0


class SlaOut(BaseModel):
    state: str
    next_breach_at: datetime | None = None
    clocks: dict[str, Any] = Field(default_factory=dict)


class ConversationOut(BaseModel):
    id: str
    instance_id: str
    contact_key: str
    chat_jid: str | None = None
    origin: str
    status: str
    opening_message_id: str
    opened_at: datetime
    first_response_at: datetime | None = None
    first_responder_id: str | None = None
    last_message_at: datetime
    last_inbound_at: datetime | None = None
    awaiting_since: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    closed_at: datetime | None = None
    expired_at: datetime | None = None
    first_assigned_at: datetime | None = None
    assignee_id: str | None = None
    team_id: str | None = None
    inbound_count: int
    outbound_count: int
    previous_conversation_id: str | None = None
    is_reopen: bool
    reopened: bool
    version: int = Field(description="Send it back as `If-Match` / `expected_version` on actions.")
    sla: SlaOut | None = None


class MessageOut(BaseModel):
    message_id: str
    timestamp: datetime
    direction: str
    kind: str
    text: str | None = None
    status: str | None = None
    edited: bool
    revoked: bool
    automated: bool
    sender_attendant_id: str | None = None


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None = None


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None = None


class ConversationDetail(ConversationOut):
    messages: MessagePage
