"""Operational API: instances (CRUD, Evolution credentials, webhook set-up)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.auth import AdminScope, Scope
from api.routes.ops_common import (
    ERRORS,
    InstanceCreated,
    InstanceOut,
    engine_of,
    evolution_factory,
    settings_of,
)
from api.routes.ops_common import translate_errors as errors
from live.evolution import DEFAULT_EVENTS
from storage import ops_repo
from storage.ops_repo import InvalidError

router = APIRouter(prefix="/v1/instances", tags=["operations: instances"], responses=ERRORS)


class InstanceFields(BaseModel):
    """What ``PUT`` replaces (unsent = default) and ``PATCH`` merges (unsent = kept). The time zone,
    business hours and SLA policy are validated by ``core.instance_config`` (422 when invalid)."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=200)
    evolution_base_url: str | None = Field(default=None, max_length=500)
    evolution_api_key: str | None = Field(default=None, description="Stored encrypted; never returned or logged.")
    evolution_instance_uuid: str | None = None
    timezone: str | None = Field(default=None, description="IANA zone; default BEAZAP_DEFAULT_TIMEZONE.")
    business_hours: dict[str, Any] | None = None
    sla_policy: dict[str, Any] | None = None
    routing: dict[str, Any] | None = None
    active: bool | None = None


class InstanceIn(InstanceFields):
    id: str = Field(min_length=1, max_length=100, description="The Evolution instance name.")


class WebhookIn(BaseModel):
    url: str | None = Field(default=None, description="Defaults to BEAZAP_PUBLIC_WEBHOOK_URL.")
    token: str | None = Field(
        default=None, description="The instance's current webhook token; when omitted a new one is issued."
    )
    events: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    by_events: bool = False


class WebhookOut(BaseModel):
    instance_id: str
    url: str
    events: list[str]
    webhook_token: str | None = Field(default=None, description="Only when a new token was issued (shown once).")
    evolution: dict[str, Any]


@router.get("", response_model=list[InstanceOut], summary="List instances")
@errors
def list_instances(request: Request, scope: Scope) -> list[dict[str, Any]]:
    return ops_repo.list_instances(engine_of(request), scope)


@router.post("", response_model=InstanceCreated, status_code=status.HTTP_201_CREATED, summary="Register an instance")
@errors
def create_instance(request: Request, scope: AdminScope, body: InstanceIn) -> dict[str, Any]:
    fields = body.model_dump(exclude={"id"}, exclude_unset=True)
    instance, token = ops_repo.create_instance(engine_of(request), scope, body.id, fields)
    return {**instance, "webhook_token": token}


@router.get("/{instance_id}", response_model=InstanceOut, summary="One instance")
@errors
def get_instance(request: Request, scope: Scope, instance_id: str) -> dict[str, Any]:
    return ops_repo.get_instance(engine_of(request), scope, instance_id)


@router.patch("/{instance_id}", response_model=InstanceOut, summary="Change some fields of an instance")
@errors
def update_instance(request: Request, scope: AdminScope, instance_id: str, body: InstanceFields) -> dict[str, Any]:
    """Fields not sent keep their value; ``business_hours`` and ``sla_policy`` merge key by key."""
    return ops_repo.update_instance(engine_of(request), scope, instance_id, body.model_dump(exclude_unset=True))


@router.put("/{instance_id}", response_model=InstanceOut, summary="Replace an instance's configuration")
@errors
def replace_instance(request: Request, scope: AdminScope, instance_id: str, body: InstanceFields) -> dict[str, Any]:
    """Fields not sent go back to their defaults (the Evolution API key is kept unless sent)."""
    return ops_repo.replace_instance(engine_of(request), scope, instance_id, body.model_dump(exclude_unset=True))


@router.delete("/{instance_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Deactivate an instance")
@errors
def delete_instance(request: Request, scope: AdminScope, instance_id: str) -> Response:
    ops_repo.deactivate_instance(engine_of(request), scope, instance_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{instance_id}/webhook", response_model=WebhookOut, summary="Point Evolution's webhook at BeaZap")
@errors
def set_webhook(request: Request, scope: AdminScope, instance_id: str, body: WebhookIn) -> dict[str, Any]:
    """Calls Evolution ``POST /webhook/set/{instance}`` with BeaZap's URL and the webhook token header."""
    engine = engine_of(request)
    ops_repo.get_instance(engine, scope, instance_id)
    url = body.url or settings_of(request).public_webhook_url
    if not url:
        raise InvalidError("no webhook url: pass `url` or set BEAZAP_PUBLIC_WEBHOOK_URL")
    creds = ops_repo.evolution_credentials(engine, scope, instance_id)
    issued: str | None = None
    if body.token:
        if not ops_repo.webhook_token_matches(engine, scope, instance_id, body.token):
            raise InvalidError("token does not match the instance's webhook token")
        token = body.token
    else:
        token = issued = ops_repo.rotate_webhook_token(engine, scope, instance_id)
    with evolution_factory(request)(creds) as client:
        answer = client.set_webhook(instance_id, url, token, events=body.events, by_events=body.by_events)
    return {"instance_id": instance_id, "url": url, "events": body.events, "webhook_token": issued, "evolution": answer}
