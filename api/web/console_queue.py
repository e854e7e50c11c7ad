"""The console's live queue page (``/app/queue``): open conversations, kept current without reloading.

A supervisor or admin sees the whole account (filter by instance and team); an attendant user sees
their own conversations and the unassigned ones of their instance — the same view as the stream's
``attendant_id`` (:class:`live.feed.Subscriber`). Rows come from the operational API's own list
endpoint (:func:`api.routes.ops_conversations.list_conversations`, with its SLA clocks from
:mod:`live.sla`), rendered once on the server; ``static/queue.js`` then follows the live stream:
``/v1/live/stream`` for supervisors, ``/app/queue/stream`` for attendants (the same endpoint with
their attendant id forced and phone numbers masked — the session of an attendant reads nothing else
of the console API).

Phone numbers are shown to the roles in :data:`PHONE_ROLES` and otherwise masked with the log
masking rule (:func:`core.logging.mask_phones`). The page's JSON helpers (rows, notifications, ack,
heartbeat) act for the logged-in user only; the writing ones check the session's CSRF token
(``X-CSRF-Token`` header).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from api.routes import live_stream as stream_api
from api.routes import ops_conversations
from api.routes.ops_common import settings_of
from api.web.routes import PageError, View, _login_redirect
from api.web.session import csrf_ok, current, engine_of
from core.logging import mask_phones
from live import presence
from live.alerts import SUPERVISORS
from live.feed import kind_of
from storage import console_repo, ops_repo
from storage.users import Session

router = APIRouter(prefix="/app/queue", include_in_schema=False)

PAGE_ROWS = 5000  # open conversations on one page at most (the newest, shown oldest first)
REFRESH_IDS = 100  # rows refreshed by id in one request at most
PHONE_ROLES = frozenset({"admin", "supervisor"})  # who reads contacts' phone numbers in the console


def may_see_phone(role: str | None) -> bool:
    return role in PHONE_ROLES


def contact_label(contact_key: str, role: str | None) -> str:
    """The contact as this role may read it: the number, or the number masked like in the logs."""
    return contact_key if may_see_phone(role) else mask_phones(contact_key)


class QueueFilter:
    """Whose queue: an attendant's own view, or the account narrowed to an instance and/or a team."""

    def __init__(self, session: Session, instance_id: str | None, team_id: str | None) -> None:
        self.attendant_id = session.user.attendant_id if session.user.role == "attendant" else None
        self.attendant_view = session.user.role == "attendant"
        self.instance_id = None if self.attendant_view else (instance_id or None)
        self.team_id = None if self.attendant_view else (team_id or None)

    def stream_url(self) -> str:
        if self.attendant_view:
            return "/app/queue/stream"
        params = [(k, v) for k, v in (("instance_id", self.instance_id), ("team_id", self.team_id)) if v]
        return "/v1/live/stream" + ("?" + "&".join(f"{k}={v}" for k, v in params) if params else "")


def _row(conv: dict[str, Any], role: str | None, now: datetime) -> dict[str, Any]:
    """One queue row: the stream event's shape (conversation, kind, sla), contact as the role may see it."""
    sla = conv.get("sla") or {}
    due = sla.get("next_breach_at")
    return {
        "id": conv["id"],
        "kind": kind_of(conv),
        "conversation": {
            "id": conv["id"],
            "instance_id": conv["instance_id"],
            "contact": contact_label(conv["contact_key"], role),
            "assignee_id": conv["assignee_id"],
            "team_id": conv["team_id"],
            "opened_at": conv["opened_at"],
            "awaiting_since": conv["awaiting_since"],
            "version": conv["version"],
        },
        "sla": {
            "state": sla.get("state"),
            "next_breach_at": due,
            "seconds_to_breach": max(0.0, (due - now).total_seconds()) if due else None,
        },
    }


def _api_list(request: Request, session: Session, qf: QueueFilter, limit: int, **narrow: Any) -> dict[str, Any]:
    return ops_conversations.list_conversations(
        request,
        session.scope,
        instance_id=narrow.pop("instance_ids", [qf.instance_id] if qf.instance_id else None),
        status_="open",
        assignee_id=narrow.pop("assignee_id", None),
        team_id=qf.team_id,
        unassigned=narrow.pop("unassigned", None),
        sla=None,
        opened_from=None,
        opened_to=None,
        limit=limit,
        cursor=None,
    )


def _attendant_instance(request: Request, session: Session) -> str:
    if not session.user.attendant_id:
        raise HTTPException(404, "this login is not linked to an attendant")
    try:
        return str(ops_repo.get_attendant(engine_of(request), session.scope, session.user.attendant_id)["instance_id"])
    except ops_repo.NotFoundError:
        raise HTTPException(404, "this login is not linked to an attendant") from None


def queue_rows(request: Request, session: Session, qf: QueueFilter) -> tuple[list[dict[str, Any]], bool]:
    """The open conversations of the view, oldest first, and whether more than :data:`PAGE_ROWS` exist."""
    now = datetime.now(UTC)
    if qf.team_id:
        try:
            ops_repo.get_team(engine_of(request), session.scope, qf.team_id)
        except ops_repo.NotFoundError:
            raise HTTPException(404, "team not found") from None
    if qf.attendant_view:
        instance = _attendant_instance(request, session)
        own = _api_list(request, session, qf, PAGE_ROWS, instance_ids=[instance], assignee_id=qf.attendant_id)
        free = _api_list(request, session, qf, PAGE_ROWS, instance_ids=[instance], unassigned=True)
        merged = sorted(own["items"] + free["items"], key=lambda r: (r["opened_at"], r["id"]), reverse=True)
        items, more = merged[:PAGE_ROWS], bool(own["next_cursor"] or free["next_cursor"] or len(merged) > PAGE_ROWS)
    else:
        page = _api_list(request, session, qf, PAGE_ROWS)
        items, more = page["items"], page["next_cursor"] is not None
    items.reverse()  # the API pages newest first; a queue reads oldest first
    return [_row(c, session.user.role, now) for c in items], more


def refresh_rows(request: Request, session: Session, qf: QueueFilter, ids: list[str]) -> list[dict[str, Any]]:
    """The current rows of ``ids`` that are still in this view (an id not answered left it)."""
    now = datetime.now(UTC)
    instance = _attendant_instance(request, session) if qf.attendant_view else None
    out = []
    for conv_id in ids[:REFRESH_IDS]:
        if not conv_id or "/" in conv_id:
            continue
        try:
            conv = ops_conversations.get_conversation(request, session.scope, conv_id, limit=1, cursor=None)
        except HTTPException:
            continue
        if conv["status"] != "open":
            continue
        if qf.attendant_view:
            visible = conv["instance_id"] == instance and conv["assignee_id"] in (None, qf.attendant_id)
        else:
            visible = (not qf.instance_id or conv["instance_id"] == qf.instance_id) and (
                not qf.team_id or conv["team_id"] == qf.team_id
            )
        if not visible:
            continue
        out.append(_row(conv, session.user.role, now))
    return out


def recipient_of(session: Session) -> str:
    """Whose in-app notifications the user reads: an attendant's own, or the supervisors'."""
    if session.user.role == "attendant":
        return session.user.attendant_id or ""
    return SUPERVISORS


def _require(request: Request) -> Session:
    session = current(request)
    if session is None:
        raise HTTPException(401, "log in first")
    return session


def _require_csrf(request: Request, session: Session) -> None:
    if not csrf_ok(session.csrf_token, request.headers.get("x-csrf-token")):
        raise HTTPException(403, "missing or wrong CSRF token")


def _names(options: dict[str, list[dict[str, Any]]], session: Session, t: Any) -> dict[str, dict[str, str]]:
    people = {a["id"]: a["name"] for a in options.get("attendants", [])}
    if session.user.attendant_id:
        people[session.user.attendant_id] = t("queue_you")
    return {"attendants": people, "teams": {x["id"]: x["name"] for x in options.get("teams", [])}}


# --- the page ---------------------------------------------------------------------------------------------------
@router.get("", response_class=HTMLResponse)
async def queue_page(request: Request, instance_id: str | None = None, team_id: str | None = None) -> Response:
    session = current(request)
    if session is None:
        return _login_redirect(request)
    view = View(request, session)
    qf = QueueFilter(session, instance_id, team_id)
    try:
        options = await view.options()
        rows, more = await run_in_threadpool(queue_rows, request, session, qf)
    except PageError as exc:
        return view.render("error.html", status_code=exc.answer.status, status=exc.answer.status, message="")
    except HTTPException as exc:
        return view.render("error.html", status_code=exc.status_code, status=exc.status_code, message=str(exc.detail))
    away_after = settings_of(request).presence_away_minutes * 60
    now = datetime.now(UTC)
    return view.render(
        "queue.html",
        page="queue",
        options=options,
        qf=qf,
        waiting=[r for r in rows if r["kind"] == "waiting"],
        assigned=[r for r in rows if r["kind"] == "assigned"],
        more=more,
        page_rows=PAGE_ROWS,
        names=_names(options, session, view.t),
        away_after=away_after,
        rendered_at=now.isoformat(),
        now_ts=now.timestamp(),
    )


# --- the page's JSON helpers ------------------------------------------------------------------------------------
@router.get("/rows")
async def rows_json(request: Request, instance_id: str | None = None, team_id: str | None = None) -> Response:
    """The view's rows (``id=…`` repeated: only those, current), as the page reloads them."""
    session = _require(request)
    qf = QueueFilter(session, instance_id, team_id)
    ids = request.query_params.getlist("id")
    try:
        if ids:
            rows, more = await run_in_threadpool(refresh_rows, request, session, qf, ids), False
        else:
            rows, more = await run_in_threadpool(queue_rows, request, session, qf)
    except PageError as exc:  # pragma: no cover - the list endpoint raises HTTPException
        raise HTTPException(exc.answer.status, exc.answer.error) from None
    return Response(
        orjson.dumps({"items": rows, "more": more, "now": datetime.now(UTC)}), media_type="application/json"
    )


@router.get("/stream")
async def attendant_stream(request: Request) -> Response:
    """An attendant's live queue: ``/v1/live/stream`` with their attendant id, phone numbers masked."""
    session = _require(request)
    if session.user.role != "attendant":
        raise HTTPException(404, "not an attendant's login: use /v1/live/stream")
    if not session.user.attendant_id:
        raise HTTPException(404, "this login is not linked to an attendant")
    upstream = await stream_api.live_stream(
        request,
        session.scope,
        instance_id=None,
        team_id=None,
        attendant_id=session.user.attendant_id,
        last_event_id=request.headers.get("last-event-id"),
    )
    role = session.user.role

    async def masked() -> AsyncIterator[bytes]:
        body = upstream.body_iterator
        async with contextlib.aclosing(body):  # type: ignore[type-var]
            async for chunk in body:
                yield _mask_frames(chunk if isinstance(chunk, bytes) else str(chunk).encode(), role)

    return StreamingResponse(masked(), media_type="text/event-stream", headers=dict(upstream.headers))


def _mask_frames(chunk: bytes, role: str | None) -> bytes:
    """SSE frames with each event's ``contact_key`` as the role may see it."""
    if b"data: " not in chunk:
        return chunk
    lines = chunk.split(b"\n")
    for n, line in enumerate(lines):
        if line.startswith(b"data: "):
            event = orjson.loads(line[6:])
            conv = event.get("conversation")
            if isinstance(conv, dict) and "contact_key" in conv:
                conv["contact_key"] = contact_label(conv["contact_key"], role)
            lines[n] = b"data: " + orjson.dumps(event)
    return b"\n".join(lines)


@router.get("/notifications")
async def notifications(request: Request) -> Response:
    """The user's unacknowledged SLA notifications, newest first."""
    session = _require(request)
    items = await run_in_threadpool(
        console_repo.list_notifications, engine_of(request), session.scope, recipient_of(session)
    )
    return Response(orjson.dumps({"items": items}, option=orjson.OPT_NON_STR_KEYS), media_type="application/json")


@router.post("/notifications/{notification_id}/ack", status_code=204)
async def ack(request: Request, notification_id: int) -> Response:
    """Acknowledge one of the user's own notifications (another's, or another account's: 404)."""
    session = _require(request)
    _require_csrf(request, session)
    engine = engine_of(request)

    def run() -> None:
        mine = console_repo.list_notifications(engine, session.scope, recipient_of(session), unacked=False, limit=1000)
        if notification_id not in {n["id"] for n in mine}:
            raise HTTPException(404, "notification not found")
        console_repo.ack_notification(engine, session.scope, notification_id, datetime.now(UTC))

    await run_in_threadpool(run)
    return Response(status_code=204)


@router.post("/heartbeat")
async def heartbeat(request: Request) -> Response:
    """The open page says the logged-in attendant is working (``{"away": true}`` when idle)."""
    session = _require(request)
    _require_csrf(request, session)
    if not session.user.attendant_id:
        raise HTTPException(404, "this login is not linked to an attendant")
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise HTTPException(422, 'the body must be JSON: {"away": false}') from None
    away = body.get("away", False) if isinstance(body, dict) else None
    if not isinstance(away, bool):
        raise HTTPException(422, "away must be true or false")
    try:
        out = await run_in_threadpool(
            presence.heartbeat,
            engine_of(request),
            session.scope,
            session.user.attendant_id,
            datetime.now(UTC),
            away=away,
        )
    except ops_repo.NotFoundError:
        raise HTTPException(404, "this login is not linked to an attendant") from None
    return JSONResponse({"attendant_id": out["attendant_id"], "state": out["state"]})
