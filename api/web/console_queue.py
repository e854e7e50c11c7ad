"""The console's live queue page (``/app/queue``): open conversations, kept current without reloading.

A supervisor or admin sees the whole account (filter by instance and team); an attendant user sees
their own conversations and the unassigned ones of their instance — the rule of the stream's
``attendant_id`` view (:class:`live.feed.Subscriber`). Rows come from the operational API's own list
endpoint (:func:`api.routes.ops_conversations.list_conversations`, with its SLA clocks from
:mod:`live.sla`), rendered once on the server; ``static/queue.js`` then follows ``/app/queue/stream``:
the endpoint of ``/v1/live/stream`` itself (:func:`api.routes.live_stream.live_stream`) for the view's
instances, with a start point (the change id the page was rendered at), each event reshaped for the
view — contact masked for the role, a conversation leaving the view sent as ``gone`` (the API's
attendant/team filters drop those events, so a row could never disappear). An attendant's session
reads nothing else of the console API.

Phone numbers are shown to the roles in :data:`PHONE_ROLES` and otherwise masked with the log
masking rule (:func:`core.logging.mask_phones`). The page's JSON helpers (rows, notifications, ack,
heartbeat) act for the logged-in user only; the writing ones check the session's CSRF token
(``X-CSRF-Token`` header)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from api.auth import contact_label
from api.routes import live_stream as stream_api
from api.routes import ops_conversations
from api.routes.ops_common import settings_of
from api.web import fmt
from api.web.routes import PageError, View, _login_redirect
from api.web.session import csrf_ok, current, engine_of
from live import presence
from live.alerts import SUPERVISORS
from live.feed import kind_of, last_change_id
from storage import console_repo, ops_repo
from storage.ops_repo import encode_cursor
from storage.users import Session

router = APIRouter(prefix="/app/queue", include_in_schema=False)

PAGE_ROWS = 200  # open conversations per page (newest first, as the API pages; shown oldest first)
REFRESH_IDS = 100  # rows refreshed by id in one request at most


class QueueFilter:
    """Whose queue: an attendant's own view, or the account narrowed to an instance and/or a team."""

    def __init__(self, session: Session, instance_id: str | None, team_id: str | None) -> None:
        self.attendant_id = session.user.attendant_id if session.user.role == "attendant" else None
        self.attendant_view = session.user.role == "attendant"
        self.instance_id = None if self.attendant_view else (instance_id or None)
        self.team_id = None if self.attendant_view else (team_id or None)

    def shows(self, conv: dict[str, Any]) -> bool:
        """Whether a conversation of the view's instances belongs in this view."""
        if self.attendant_view:
            return conv["assignee_id"] in (None, self.attendant_id)
        return not self.team_id or conv["team_id"] == self.team_id

    def query(self, **extra: Any) -> str:
        pairs = {"instance_id": self.instance_id, "team_id": self.team_id, **extra}
        return urlencode([(k, str(v)) for k, v in pairs.items() if v is not None and v != ""])


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


def _api_list(request: Request, session: Session, qf: QueueFilter, cursor: str | None, **narrow: Any) -> dict:
    """One page of the operational API's conversation list (its own endpoint function: same rows, same SLA)."""
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
        limit=PAGE_ROWS,
        cursor=cursor,
    )


def _attendant_instance(request: Request, session: Session) -> str:
    if not session.user.attendant_id:
        raise HTTPException(404, "this login is not linked to an attendant")
    try:
        return str(ops_repo.get_attendant(engine_of(request), session.scope, session.user.attendant_id)["instance_id"])
    except ops_repo.NotFoundError:
        raise HTTPException(404, "this login is not linked to an attendant") from None


def queue_rows(
    request: Request, session: Session, qf: QueueFilter, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the view's open conversations (the API's order and cursor: newest first; older ones
    with the returned cursor), each page shown oldest first."""
    now = datetime.now(UTC)
    if qf.team_id:
        try:
            ops_repo.get_team(engine_of(request), session.scope, qf.team_id)
        except ops_repo.NotFoundError:
            raise HTTPException(404, "team not found") from None
    if qf.attendant_view:  # own + unassigned: two API pages on the same keyset, merged
        instance = _attendant_instance(request, session)
        own = _api_list(request, session, qf, cursor, instance_ids=[instance], assignee_id=qf.attendant_id)
        free = _api_list(request, session, qf, cursor, instance_ids=[instance], unassigned=True)
        merged = sorted(own["items"] + free["items"], key=lambda r: (r["opened_at"], r["id"]), reverse=True)
        items = merged[:PAGE_ROWS]
        more = len(merged) > PAGE_ROWS or own["next_cursor"] or free["next_cursor"]
        next_cursor = encode_cursor(items[-1]["opened_at"], items[-1]["id"]) if more and items else None
    else:
        page = _api_list(request, session, qf, cursor)
        items, next_cursor = page["items"], page["next_cursor"]
    items.reverse()  # the API pages newest first; a queue reads oldest first
    return [_row(c, session.user.role, now) for c in items], next_cursor


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
        if (instance and conv["instance_id"] != instance) or (qf.instance_id and conv["instance_id"] != qf.instance_id):
            continue
        if not qf.shows(conv):
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


def _shown(row: dict[str, Any], names: dict[str, dict[str, str]], t: Any, lang: str, now: datetime) -> dict[str, Any]:
    """A row's texts as the page first shows them (queue.js keeps them current)."""
    c, sla = row["conversation"], row["sla"]
    state, waiting = sla["state"], c["awaiting_since"]
    return {
        "opened": c["opened_at"].isoformat(),
        "awaiting": waiting.isoformat() if waiting else "",
        "waited": fmt.duration((now - waiting).total_seconds() if waiting else None, lang),
        "assignee": names["attendants"].get(c["assignee_id"], c["assignee_id"]) if c["assignee_id"] else fmt.DASH,
        "team": names["teams"].get(c["team_id"], c["team_id"]) if c["team_id"] else fmt.DASH,
        "sla": state or "",
        "sla_label": t(f"queue_sla_{state or 'none'}"),
        "breach_in": "" if sla["seconds_to_breach"] is None else sla["seconds_to_breach"],
        "breach": fmt.duration(sla["seconds_to_breach"], lang),
    }


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
        after = await run_in_threadpool(last_change_id, engine_of(request))  # before the rows: replayed, never lost
        rows, next_cursor = await run_in_threadpool(queue_rows, request, session, qf)
    except PageError as exc:
        return view.render("error.html", status_code=exc.answer.status, status=exc.answer.status, message="")
    except HTTPException as exc:
        return view.render("error.html", status_code=exc.status_code, status=exc.status_code, message=str(exc.detail))
    away_after = settings_of(request).presence_away_minutes * 60
    now = datetime.now(UTC)
    names = _names(options, session, view.t)
    for r in rows:
        r["show"] = _shown(r, names, view.t, view.lang, now)
    return view.render(
        "queue.html",
        page="queue",
        options=options,
        qf=qf,
        stream_url="/app/queue/stream?" + qf.query(after=after),
        rows_url="/app/queue/rows?" + qf.query(),
        waiting=[r for r in rows if r["kind"] == "waiting"],
        assigned=[r for r in rows if r["kind"] == "assigned"],
        next_cursor=next_cursor,
        page_rows=PAGE_ROWS,
        names=names,
        away_after=away_after,
        rendered_at=now.isoformat(),
    )


# --- the page's JSON helpers ------------------------------------------------------------------------------------
@router.get("/rows")
async def rows_json(
    request: Request, instance_id: str | None = None, team_id: str | None = None, cursor: str | None = None
) -> Response:
    """The view's rows as the page reloads them: the first page, an older one (``cursor``), or only
    some conversations, current (``id=…`` repeated; an id not answered has left the view)."""
    session = _require(request)
    qf = QueueFilter(session, instance_id, team_id)
    ids = request.query_params.getlist("id")
    if ids:
        rows, next_cursor = await run_in_threadpool(refresh_rows, request, session, qf, ids), None
    else:
        rows, next_cursor = await run_in_threadpool(queue_rows, request, session, qf, cursor)
    body = {"items": rows, "next_cursor": next_cursor, "now": datetime.now(UTC)}
    return Response(orjson.dumps(body), media_type="application/json")


def _stream_instances(request: Request, session: Session, qf: QueueFilter) -> list[str] | None:
    """The instances the view's stream reads (None: all of the caller's); 404 for another account's team."""
    if qf.attendant_view:
        return [_attendant_instance(request, session)]
    if qf.team_id:
        try:
            team = ops_repo.get_team(engine_of(request), session.scope, qf.team_id)
        except ops_repo.NotFoundError:
            raise HTTPException(404, "team not found") from None
        return [qf.instance_id or team["instance_id"]]
    return [qf.instance_id] if qf.instance_id else None


@router.get("/stream")
async def stream(
    request: Request, instance_id: str | None = None, team_id: str | None = None, after: str | None = None
) -> Response:
    """The view's live queue: ``/v1/live/stream`` of the view's instances, each event as the page shows it.

    ``after``: the change id the page was rendered at, so the first connection replays what changed
    since (an ``EventSource`` sends ``Last-Event-ID`` only once it received an event; when it does,
    the header wins). A conversation that leaves the view (assigned to someone else, moved to another
    team) arrives as ``kind: "gone"`` with its id only; contacts are shown as the role may see them.
    """
    session = _require(request)
    qf = QueueFilter(session, instance_id, team_id)
    instances = await run_in_threadpool(_stream_instances, request, session, qf)
    upstream = await stream_api.live_stream(
        request,
        session.scope,
        instance_id=instances,
        team_id=None,
        attendant_id=None,
        last_event_id=request.headers.get("last-event-id") or after,
    )
    role = session.user.role

    async def frames() -> AsyncIterator[bytes]:
        body = upstream.body_iterator
        async with contextlib.aclosing(body):  # type: ignore[type-var]
            async for chunk in body:
                yield view_frames(chunk if isinstance(chunk, bytes) else str(chunk).encode(), qf, role)

    return StreamingResponse(frames(), media_type="text/event-stream", headers=dict(upstream.headers))


def view_frames(chunk: bytes, qf: QueueFilter, role: str | None) -> bytes:
    """SSE frames as the view shows them: contact as the role may see it; out of the view → ``gone``."""
    if b"data: " not in chunk:
        return chunk
    lines = chunk.split(b"\n")
    for n, line in enumerate(lines):
        if not line.startswith(b"data: "):
            continue
        event = orjson.loads(line[6:])
        conv = event.get("conversation")
        if isinstance(conv, dict):
            if not qf.shows(conv):  # whatever the kind: a colleague's resolved conversation is not the view's
                event = {
                    "id": event["id"],
                    "kind": "gone",
                    "conversation": {"id": conv["id"], "version": conv["version"]},
                }
            else:
                conv["contact"] = contact_label(conv.pop("contact_key", ""), role)
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
