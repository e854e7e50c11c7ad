"""Console API (issue 15): quick replies, attendant presence, SLA notifications and the alert webhook.

The live queue stream is in :mod:`api.routes.live_stream`. Bearer-token auth, scoped to the caller's
account like the rest of the operational API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from api.auth import AdminScope, Scope, WriteScope
from api.routes.ops_common import ERRORS, engine_of, settings_of
from api.routes.ops_common import translate_errors as errors
from live import presence
from storage import console_repo

router = APIRouter(prefix="/v1", tags=["console"], responses=ERRORS)


def _now() -> datetime:
    return datetime.now(UTC)


class QuickReplyIn(BaseModel):
    shortcut: str = Field(min_length=1, max_length=51, description="e.g. `/saudacao` (the `/` is optional).")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=4096)


class QuickReplyPatch(BaseModel):
    shortcut: str | None = Field(default=None, min_length=1, max_length=51)
    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, min_length=1, max_length=4096)


class QuickReplyOut(BaseModel):
    id: str
    shortcut: str
    title: str
    body: str
    created_at: datetime | None = None
    updated_at: datetime | None = None


class HeartbeatIn(BaseModel):
    away: bool = Field(default=False, description="The attendant set themselves away.")


class PresenceOut(BaseModel):
    attendant_id: str
    instance_id: str | None = None
    team_id: str | None = None
    last_seen_at: datetime | None = None
    state: str = Field(description="online | away | offline")
    open_conversations: int | None = None
    capacity: int | None = None


class NotificationOut(BaseModel):
    id: int
    recipient: str = Field(description="An attendant id, or `supervisors`.")
    created_at: datetime
    acked_at: datetime | None = None
    conversation_id: str
    instance_id: str
    clock: str
    state: str
    due_at: datetime | None = None
    assignee_id: str | None = None


class AlertWebhookIn(BaseModel):
    url: str = Field(min_length=8, max_length=2000)
    secret: str = Field(min_length=16, max_length=200, description="HMAC-SHA256 key; never returned.")


class AlertWebhookOut(BaseModel):
    url: str
    secret_set: bool
    updated_at: datetime | None = None


# ----------------------------------------------------------------------------- quick replies
@router.get("/quick-replies", response_model=list[QuickReplyOut], summary="List quick replies")
@errors
def list_quick_replies(request: Request, scope: Scope, prefix: str | None = None) -> list[dict[str, Any]]:
    """The account's canned answers, by shortcut; ``prefix=/sau`` narrows them while typing."""
    return console_repo.list_quick_replies(engine_of(request), scope, prefix)


@router.get("/quick-replies/shortcut/{shortcut}", response_model=QuickReplyOut, summary="Quick reply by shortcut")
@errors
def quick_reply_by_shortcut(request: Request, scope: Scope, shortcut: str) -> dict[str, Any]:
    return console_repo.get_quick_reply(engine_of(request), scope, shortcut=console_repo.normalize_shortcut(shortcut))


@router.post("/quick-replies", response_model=QuickReplyOut, status_code=201, summary="Create a quick reply")
@errors
def create_quick_reply(request: Request, scope: WriteScope, body: QuickReplyIn) -> dict[str, Any]:
    return console_repo.create_quick_reply(engine_of(request), scope, body.model_dump())


@router.get("/quick-replies/{reply_id}", response_model=QuickReplyOut, summary="One quick reply")
@errors
def get_quick_reply(request: Request, scope: Scope, reply_id: str) -> dict[str, Any]:
    return console_repo.get_quick_reply(engine_of(request), scope, reply_id=reply_id)


@router.patch("/quick-replies/{reply_id}", response_model=QuickReplyOut, summary="Change a quick reply")
@errors
def update_quick_reply(request: Request, scope: WriteScope, reply_id: str, body: QuickReplyPatch) -> dict[str, Any]:
    return console_repo.update_quick_reply(engine_of(request), scope, reply_id, body.model_dump(), _now())


@router.delete("/quick-replies/{reply_id}", status_code=204, summary="Delete a quick reply")
@errors
def delete_quick_reply(request: Request, scope: WriteScope, reply_id: str) -> Response:
    console_repo.delete_quick_reply(engine_of(request), scope, reply_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ----------------------------------------------------------------------------- presence
@router.post("/attendants/{attendant_id}/heartbeat", response_model=PresenceOut, summary="Attendant activity")
@errors
def heartbeat(request: Request, scope: WriteScope, attendant_id: str, body: HeartbeatIn | None = None) -> dict:
    """The console calls this while the attendant works (e.g. every minute); silence makes them away
    after ``presence_away_minutes`` and offline after ``presence_offline_minutes``."""
    return presence.heartbeat(engine_of(request), scope, attendant_id, _now(), away=bool(body and body.away))


@router.get("/presence", response_model=list[PresenceOut], summary="Who is online")
@errors
def list_presence(request: Request, scope: Scope, instance_id: str | None = None) -> list[dict[str, Any]]:
    return presence.presence_list(engine_of(request), scope, _now(), settings_of(request), instance_id)


# ----------------------------------------------------------------------------- notifications and alerts
@router.get("/notifications", response_model=list[NotificationOut], summary="SLA notifications")
@errors
def list_notifications(
    request: Request, scope: Scope, recipient: str | None = None, include_acked: bool = False
) -> list[dict[str, Any]]:
    """In-app SLA alerts, newest first; ``recipient`` = an attendant id or ``supervisors``."""
    return console_repo.list_notifications(engine_of(request), scope, recipient, unacked=not include_acked)


@router.post("/notifications/{notification_id}/ack", status_code=204, summary="Acknowledge a notification")
@errors
def ack_notification(request: Request, scope: WriteScope, notification_id: int) -> Response:
    console_repo.ack_notification(engine_of(request), scope, notification_id, _now())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/alerts/webhook", response_model=AlertWebhookOut, summary="Set the SLA alert webhook")
@errors
def set_alert_webhook(request: Request, scope: AdminScope, body: AlertWebhookIn) -> dict[str, Any]:
    return console_repo.set_alert_webhook(engine_of(request), scope, body.url, body.secret, _now())


@router.get("/alerts/webhook", response_model=AlertWebhookOut, summary="The SLA alert webhook")
@errors
def get_alert_webhook(request: Request, scope: AdminScope) -> dict[str, Any]:
    return console_repo.get_alert_webhook(engine_of(request), scope)


@router.delete("/alerts/webhook", status_code=204, summary="Remove the SLA alert webhook")
@errors
def delete_alert_webhook(request: Request, scope: AdminScope) -> Response:
    console_repo.delete_alert_webhook(engine_of(request), scope)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
