"""Operational API: live conversations (list, detail, messages), actions, auto-assignment, sending,
and the live SLA queues (from the seed's partial index)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import Scope, WriteScope, contact_for
from api.routes.ops_common import (
    ERRORS,
    ConversationDetail,
    ConversationOut,
    ConversationPage,
    MessagePage,
    engine_of,
    evolution_factory,
)
from api.routes.ops_common import translate_errors as errors
from live import actions as ops_actions
from live import sla as live_sla
from live.assignment import assign_next
from live.sending import send_message
from live.sla import SlaPolicy, clocks
from storage import ops_repo
from storage.ops_repo import ConflictError, ConversationFilter, InvalidError
from storage.tokens import TenantScope

router = APIRouter(prefix="/v1", tags=["operations: conversations"], responses=ERRORS)


def _policies(request: Request, instance_ids: list[str]) -> dict[str, SlaPolicy]:
    return live_sla.policies(engine_of(request), instance_ids)


def _attendant_may_see(scope: TenantScope, conv: dict[str, Any]) -> bool:
    """An attendant's session works on its own conversations and the unassigned ones (the queue's view)."""
    return scope.role != "attendant" or conv["assignee_id"] in (None, scope.attendant_id)


def _get_for(engine: Any, scope: TenantScope, conversation_id: str, expected: int | None = None) -> dict[str, Any]:
    """The conversation if the caller may work on it, else 404 like an unknown id. A stale ``expected``
    version passes, so the action answers 409 with who changed it (the console says it in words)."""
    conv = ops_repo.get_conversation(engine, scope, conversation_id)
    if not _attendant_may_see(scope, conv) and (expected is None or expected == conv["version"]):
        raise ops_repo.NotFoundError(f"conversation not found: {conversation_id}")
    return conv


def _with_sla(
    rows: list[dict[str, Any]], policies: dict[str, SlaPolicy], now: datetime, scope: TenantScope
) -> list[dict[str, Any]]:
    """Rows as the caller reads them: with their SLA clocks, the contact masked for roles that may not see it."""
    for row in rows:
        row["sla"] = clocks(row, policies[row["instance_id"]], now)
        row["contact_key"] = contact_for(scope, row["contact_key"])
        if row.get("chat_jid"):
            row["chat_jid"] = contact_for(scope, row["chat_jid"])
    return rows


@router.get("/conversations", response_model=ConversationPage, summary="List conversations")
@errors
def list_conversations(
    request: Request,
    scope: Scope,
    instance_id: Annotated[list[str] | None, Query()] = None,
    status_: Annotated[Literal["open", "resolved", "expired", "abandoned"] | None, Query(alias="status")] = None,
    assignee_id: str | None = None,
    team_id: str | None = None,
    unassigned: bool | None = None,
    sla: Annotated[Literal["at_risk", "breached"] | None, Query(description="first-response clock")] = None,
    opened_from: datetime | None = None,
    opened_to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    engine = engine_of(request)
    ids = ops_repo.scoped_instances(scope, instance_id)
    now = datetime.now(UTC)
    policies = _policies(request, ids)
    flt = ConversationFilter(ids, status_, assignee_id, team_id, unassigned, sla, opened_from, opened_to)
    cutoffs = {i: c for i, p in policies.items() if (c := p.frt_cutoffs(now)) is not None}
    rows, next_cursor = ops_repo.list_conversations(engine, scope, flt, limit=limit, cursor=cursor, frt_cutoffs=cutoffs)
    rows = [row for row in rows if _attendant_may_see(scope, row)]
    return {"items": _with_sla(rows, policies, now, scope), "next_cursor": next_cursor}


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail, summary="Conversation + messages")
@errors
def get_conversation(
    request: Request,
    scope: Scope,
    conversation_id: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    engine = engine_of(request)
    conv = _get_for(engine, scope, conversation_id)
    msgs, next_cursor = ops_repo.list_messages(
        engine, scope, conversation_id, limit=limit, cursor=cursor, conversation=conv
    )
    _with_sla([conv], _policies(request, [conv["instance_id"]]), datetime.now(UTC), scope)
    return {**conv, "messages": {"items": msgs, "next_cursor": next_cursor}}


@router.get("/conversations/{conversation_id}/messages", response_model=MessagePage, summary="Messages (paginated)")
@errors
def list_messages(
    request: Request,
    scope: Scope,
    conversation_id: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    _get_for(engine_of(request), scope, conversation_id)
    msgs, next_cursor = ops_repo.list_messages(engine_of(request), scope, conversation_id, limit=limit, cursor=cursor)
    return {"items": msgs, "next_cursor": next_cursor}


class ActionIn(BaseModel):
    actor_id: str | None = Field(
        default=None,
        description="Who acts (attendant id); defaults to the token id. A dashboard session always acts as its user.",
    )
    attendant_id: str | None = None
    team_id: str | None = None
    expected_version: int | None = Field(
        default=None, description="Optimistic concurrency: the `version` you saw (or send `If-Match`)."
    )


def _actor(scope: Any, claimed: str | None) -> str:
    """Who acts: a dashboard user is who their session says (a claimed id is ignored); a token may name one."""
    if scope.role is not None:
        return str(scope.attendant_id or scope.token_id)
    return claimed or f"token:{scope.token_id[:8]}"


def _action(
    request: Request, scope: Any, conversation_id: str, action: str, body: ActionIn, if_match: str | None
) -> dict[str, Any] | JSONResponse:
    expected = body.expected_version
    if expected is None and if_match:
        try:
            expected = int(if_match.strip().strip('"').removeprefix("W/").strip('"'))
        except ValueError:
            raise InvalidError("If-Match must be the conversation version") from None
    _get_for(engine_of(request), scope, conversation_id, expected)
    try:
        conv = ops_actions.act(
            engine_of(request),
            scope,
            conversation_id,
            action,
            actor_id=_actor(scope, body.actor_id),
            attendant_id=body.attendant_id,
            team_id=body.team_id,
            expected_version=expected,
        )
    except ConflictError as exc:  # say who changed it first, and when (the console shows it in words)
        current = ops_actions.last_action(engine_of(request), scope, conversation_id)
        return JSONResponse(
            status_code=status.HTTP_409_CONFLICT, content=jsonable_encoder({"error": str(exc), "current": current})
        )
    _with_sla([conv], _policies(request, [conv["instance_id"]]), datetime.now(UTC), scope)
    return conv


IfMatch = Annotated[str | None, Header(description="The conversation `version` you acted on.")]


@router.post("/conversations/{conversation_id}/assign", response_model=ConversationOut, summary="Assign")
@errors
def assign(request: Request, scope: WriteScope, conversation_id: str, body: ActionIn, if_match: IfMatch = None) -> Any:
    return _action(request, scope, conversation_id, "assign", body, if_match)


@router.post("/conversations/{conversation_id}/transfer", response_model=ConversationOut, summary="Transfer")
@errors
def transfer(
    request: Request, scope: WriteScope, conversation_id: str, body: ActionIn, if_match: IfMatch = None
) -> Any:
    return _action(request, scope, conversation_id, "transfer", body, if_match)


@router.post("/conversations/{conversation_id}/unassign", response_model=ConversationOut, summary="Unassign")
@errors
def unassign(
    request: Request, scope: WriteScope, conversation_id: str, body: ActionIn, if_match: IfMatch = None
) -> Any:
    return _action(request, scope, conversation_id, "unassign", body, if_match)


@router.post("/conversations/{conversation_id}/resolve", response_model=ConversationOut, summary="Resolve")
@errors
def resolve(request: Request, scope: WriteScope, conversation_id: str, body: ActionIn, if_match: IfMatch = None) -> Any:
    return _action(request, scope, conversation_id, "resolve", body, if_match)


@router.post("/conversations/{conversation_id}/reopen", response_model=ConversationOut, summary="Reopen")
@errors
def reopen(request: Request, scope: WriteScope, conversation_id: str, body: ActionIn, if_match: IfMatch = None) -> Any:
    return _action(request, scope, conversation_id, "reopen", body, if_match)


class AutoAssignIn(BaseModel):
    team_id: str | None = Field(
        default=None, description="Route within this team (default: its team or the instance's default team)."
    )


@router.post(
    "/conversations/{conversation_id}/auto-assign",
    response_model=ConversationOut,
    summary="Route with the instance's router (round-robin by default)",
    responses={204: {"description": "nobody available: the conversation stays in the queue"}},
)
@errors
def auto_assign(request: Request, scope: WriteScope, conversation_id: str, body: AutoAssignIn) -> Any:
    engine = engine_of(request)
    _get_for(engine, scope, conversation_id)
    if body.team_id:
        team = ops_repo.get_team(engine, scope, body.team_id)
        conv = ops_repo.get_conversation(engine, scope, conversation_id)
        if team["instance_id"] != conv["instance_id"]:
            raise ops_repo.NotFoundError(f"team not found: {body.team_id}")
    conv = assign_next(engine, conversation_id, scope=scope, team_id=body.team_id)
    if conv is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    _with_sla([conv], _policies(request, [conv["instance_id"]]), datetime.now(UTC), scope)
    return conv


class SendIn(BaseModel):
    text: str = Field(min_length=1, max_length=65_536)
    attendant_id: str | None = Field(default=None, description="The sender (attribution); default: the assignee.")
    quoted_message_id: str | None = None


class SendOut(BaseModel):
    message_id: str
    conversation_id: str
    replayed: bool = Field(description="True when this Idempotency-Key was already sent (nothing sent again).")


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=SendOut,
    status_code=status.HTTP_201_CREATED,
    summary="Send a text message through Evolution",
    responses={502: {"description": "Evolution refused or is unreachable (reason included)"}},
)
@errors
def send(
    request: Request,
    response: Response,
    scope: WriteScope,
    conversation_id: str,
    body: SendIn,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Retries on Evolution 5xx/timeouts; a repeated ``Idempotency-Key`` never sends twice."""
    engine = engine_of(request)
    conv = _get_for(engine, scope, conversation_id)
    result = send_message(
        engine,
        scope,
        conversation_id,
        text=body.text,
        idempotency_key=idempotency_key or f"auto-{uuid.uuid4().hex}",
        attendant_id=scope.attendant_id if scope.role == "attendant" else body.attendant_id or conv["assignee_id"],
        quoted_message_id=body.quoted_message_id,
        client_factory=evolution_factory(request),
    )
    if result.replayed:
        response.status_code = status.HTTP_200_OK
    return {"message_id": result.message_id, "conversation_id": result.conversation_id, "replayed": result.replayed}


# ----------------------------------------------------------------------------------- live SLA
class SlaQueue(BaseModel):
    items: list[ConversationOut]
    count: int


def _queue(request: Request, scope: Any, instance_id: list[str] | None, kind: str, limit: int) -> dict[str, Any]:
    ids = ops_repo.scoped_instances(scope, instance_id)
    rows = live_sla.first_response_list(engine_of(request), scope, ids, kind, datetime.now(UTC), limit=limit)
    return {"items": rows, "count": len(rows)}


# The three live SLA lists: (path, kind, summary, description) — one endpoint function serves them all.
SLA_LISTS = (
    (
        "/sla/queue",
        "queue",
        "Open conversations without a first response",
        "Oldest first, each with ``sla.next_breach_at`` (the seed's partial-index query).",
    ),
    ("/sla/at-risk", "at_risk", "First response past the at-risk share of target", "Oldest first."),
    ("/sla/breached", "breached", "First response target already missed", "Oldest first."),
)


def sla_list(kind: str) -> Any:
    """The endpoint of one live SLA list (``kind``: queue, at_risk or breached)."""

    @errors
    def endpoint(
        request: Request,
        scope: Scope,
        instance_id: Annotated[list[str] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        return _queue(request, scope, instance_id, kind, limit)

    return endpoint


for _path, _kind, _summary, _description in SLA_LISTS:
    router.add_api_route(
        _path,
        sla_list(_kind),
        methods=["GET"],
        response_model=SlaQueue,
        summary=_summary,
        description=_description,
        name=f"sla_{_kind}",
    )
