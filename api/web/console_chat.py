"""The console's conversation view (``/app/console/conversations/{id}``): transcript, actions, reply box.

The page shows the conversation as WhatsApp does — bubbles by direction, times in the INSTANCE's time
zone (its configuration, never the browser's), delivery ticks, edits with their history, deletions,
reactions, media placeholders and calls (:mod:`api.web.chat_history` adds what only silver knows) —
with the conversation's clocks. Everything comes from the operational API called in-process as the
logged-in user (``api.web.data``), so another account's conversation answers the 404 page.

``static/chat.js`` does the rest against the same ``/v1`` API with the session cookie and its CSRF
token (``X-CSRF-Token``, see ``api.auth``): actions with ``If-Match``, replies with an
``Idempotency-Key``, and the live stream; on a change of this conversation it refetches
``…/{id}/live``, the server-rendered header and transcript, so there is one rendering of a message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.routes.ops_common import settings_of
from api.web import data, fmt
from api.web.chat_history import History, load_history
from api.web.routes import PageError, View, _login_redirect
from api.web.session import current, engine_of
from storage import ops_repo
from storage.instances import load_configs
from storage.lake import Lake

router = APIRouter(prefix="/app/console", include_in_schema=False)
PAGE_SIZE = 500
MAX_MESSAGES = 2000  # the transcript's last messages shown (older ones stay in the API)
TICKS = {"pending": "pending", "server_ack": "sent", "delivery_ack": "delivered", "read": "read", "played": "read"}


def tick(status: str | None) -> str:
    """pending | sent | delivered | read | failed: the tick WhatsApp draws for a message status."""
    if status == "error":
        return "failed"
    return TICKS.get(status or "pending", "pending")


async def _conversation(view: View, conversation_id: str) -> dict[str, Any]:
    """The conversation with its SLA and up to ``MAX_MESSAGES`` of its latest messages (oldest first)."""
    path = f"/v1/conversations/{data.segment(conversation_id)}"
    conv = await view.get(path, {"limit": PAGE_SIZE})
    items, cursor = conv["messages"]["items"], conv["messages"]["next_cursor"]
    while cursor:
        page = await view.get(f"{path}/messages", {"limit": PAGE_SIZE, "cursor": cursor})
        items = (items + page["items"])[-MAX_MESSAGES:]
        cursor = page["next_cursor"]
    conv["messages"] = items
    return conv


def _local(value: Any, zone: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return ts.astimezone(zone)


def _when(at: datetime | None, today: datetime, lang: str) -> str | None:
    """``14:30`` today, ``08/12/2026 14:30`` another day (local time)."""
    if at is None:
        return None
    return at.strftime("%H:%M") if at.date() == today.date() else f"{fmt.day(at.date(), lang)} {at:%H:%M}"


def _seconds(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    a = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
    b = end if isinstance(end, datetime) else datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    return max(0.0, (b - a).total_seconds())


def _bubbles(conv: dict[str, Any], history: History, names: dict[str, str], zone: ZoneInfo) -> list[dict[str, Any]]:
    """Messages and calls in time order, each with what its bubble shows."""
    out: list[dict[str, Any]] = []
    for m in conv["messages"]:
        extra = history.messages.get(m["message_id"], {})
        at = _local(m["timestamp"], zone)
        out.append(
            {
                "type": "message",
                "id": m["message_id"],
                "at": at,
                "direction": m["direction"],
                "kind": m["kind"],
                "text": None if m["revoked"] else m["text"],
                "tick": tick(m["status"]) if m["direction"] == "outbound" else None,
                "edited": m["edited"],
                "edits": [(_local(e["at"], zone), e["text"]) for e in extra.get("edits", [])],
                "original": extra.get("original_text"),
                "revoked": m["revoked"],
                "automated": m["automated"],
                "sender": names.get(m["sender_attendant_id"] or "", m["sender_attendant_id"]),
                "reactions": extra.get("reactions", []),
                "media": extra.get("media"),
            }
        )
    for call in history.calls:
        out.append({"type": "call", "at": _local(call["offered_at"], zone), **call})
    out.sort(key=lambda b: b["at"])
    return out


def _lake(request: Request) -> Lake:
    state = request.app.state
    if getattr(state, "chat_lake", None) is None:
        state.chat_lake = Lake.from_settings(settings_of(request))
    return state.chat_lake


async def _context(view: View, conversation_id: str) -> dict[str, Any]:
    engine = engine_of(view.request)
    conv = await _conversation(view, conversation_id)
    instance = conv["instance_id"]
    zone = load_configs(engine, [instance])[instance].zone
    scope = view.session.scope
    people = ops_repo.list_attendants(engine, scope, instance)
    names = {p["id"]: p["name"] for p in people}
    now = datetime.now(UTC)
    # the answer shows the contact as the role may read it; silver is looked up by the real one
    contact_key = ops_repo.get_conversation(engine, scope, conversation_id)["contact_key"]
    history = load_history(_lake(view.request), {**conv, "contact_key": contact_key}, now)
    sla = conv.get("sla") or {}
    return {
        "conv": conv,
        "zone": zone.key,
        "bubbles": _bubbles(conv, history, names, zone),
        "names": names,
        "people": [p for p in people if p["active"]],
        "teams": ops_repo.list_teams(engine, scope, instance),
        "me": view.session.user.attendant_id,
        "clocks": {
            "frt": _seconds(conv["opened_at"], conv["first_response_at"]),
            "wait": _seconds(conv["awaiting_since"], now) if conv["status"] == "open" else None,
            "sla_state": sla.get("state"),
            "due": _when(_local(sla.get("next_breach_at"), zone), now.astimezone(zone), view.lang),
        },
    }


async def _render(request: Request, conversation_id: str, template: str) -> Response:
    session = current(request)
    if session is None:
        return _login_redirect(request)
    view = View(request, session)
    try:
        context = await _context(view, conversation_id)
    except ValueError:  # data.segment: not an id at all
        return view.render("error.html", status_code=404, status=404, message="")
    except PageError as exc:
        status = exc.answer.status if exc.answer.status in (403, 404) else 502
        return view.render("error.html", status_code=status, status=status, message="")
    return view.render(template, page="console", **context)


@router.get("/conversations/{conversation_id}")
async def conversation_page(request: Request, conversation_id: str) -> Response:
    return await _render(request, conversation_id, "chat.html")


@router.get("/conversations/{conversation_id}/live")
async def conversation_live(request: Request, conversation_id: str) -> Response:
    """The header and transcript alone: what the page swaps in when the conversation changes."""
    return await _render(request, conversation_id, "chat_live.html")
