"""The dashboard's pages: login/logout, overview, volume, SLA, people, calls, insights, a conversation,
settings (admins), CSV downloads and the language switch.

Each page asks the API for its figures through :mod:`api.web.data` as the logged-in user and renders
them with :mod:`api.web.fmt`; API errors become error pages with the same status (403 for an
attendant asking for someone else's figures, 404 for another account's instance).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.auth import SESSION_COOKIE
from api.web import data, fmt, i18n
from api.web.filters import PERIODS, ViewFilters, from_query
from api.web.session import (
    LOGIN_CSRF_COOKIE,
    csrf_ok,
    current,
    engine_of,
    limiter,
    new_login_csrf,
    secure_cookies,
)
from storage.users import SESSION_TTL, Session, authenticate, end_session, start_session

router = APIRouter(prefix="/app", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
templates.env.globals["fmt"] = fmt
templates.env.filters["tojson_safe"] = lambda value: orjson.dumps(value).decode().replace("</", "<\\/")

PAGES = ("overview", "volume", "sla", "people", "calls", "insights")
CSV_TABLES = {
    "volume": "/v1/metrics/volume",
    "heatmap": "/v1/metrics/heatmap",
    "sla": "/v1/metrics/sla",
    "attendants": "/v1/metrics/attendants",
    "teams": "/v1/metrics/teams",
    "calls": "/v1/metrics/calls",
    "facts": "/v1/conversations/facts",
}
OVERVIEW_CARDS = (
    ("messages_inbound", "number"),
    ("messages_outbound", "number"),
    ("conversations_opened", "number"),
    ("conversations_resolved", "number"),
    ("conversations_expired", "number"),
    ("backlog_end", "number"),
    ("frt_business_median_seconds", "duration"),
    ("frt_median_seconds", "duration"),
    ("frt_p90_seconds", "duration"),
    ("resolution_median_seconds", "duration"),
    ("frt_sla_achievement_pct", "pct"),
    ("resolution_sla_achievement_pct", "pct"),
)
# A rise is good news for these figures and bad news for the others (the card colours its change).
HIGHER_IS_BETTER = {
    "conversations_resolved",
    "frt_sla_achievement_pct",
    "resolution_sla_achievement_pct",
}
LOWER_IS_BETTER = {
    "conversations_expired",
    "backlog_end",
    "frt_business_median_seconds",
    "frt_median_seconds",
    "frt_p90_seconds",
    "resolution_median_seconds",
}
SORTS = (
    "conversations_resolved",
    "conversations_assigned",
    "messages_sent",
    "first_responses",
    "frt_median_seconds",
    "frt_p90_seconds",
    "frt_achievement_pct",
    "resolution_median_seconds",
)


class PageError(Exception):
    """An API answer that ends the page: shown with its status and what to do next."""

    def __init__(self, answer: data.ApiAnswer) -> None:
        super().__init__(answer.error)
        self.answer = answer


class View:
    """One page request: the user, their language and filters, and API calls on their behalf."""

    def __init__(self, request: Request, session: Session) -> None:
        self.request, self.session = request, session
        self.lang = i18n.pick(request)
        self.t = i18n.translator(self.lang)
        self.filters: ViewFilters = from_query(request.query_params)
        if self.session.user.role == "attendant" and not self.filters.attendant_ids:
            self.filters.attendant_ids = [self.session.user.attendant_id or ""]

    async def get(self, path: str, params: dict[str, Any] | None = None, accept: str = "application/json") -> Any:
        answer = await data.call(self.request.app, self.session.scope, "GET", path, params, accept=accept)
        if not answer.ok:
            raise PageError(answer)
        return answer if accept != "application/json" else answer.json()

    async def send(self, method: str, path: str, body: Any) -> data.ApiAnswer:
        return await data.call(self.request.app, self.session.scope, method, path, body=body)

    async def metrics(self, path: str, **extra: Any) -> Any:
        return await self.get(path, {**self.filters.api_params(), **extra})

    async def options(self) -> dict[str, list[dict[str, Any]]]:
        """Instances, teams and attendants for the filter bar (supervisors and admins)."""
        if self.session.user.role == "attendant":
            return {"instances": [], "teams": [], "attendants": []}
        return {
            "instances": await self.get("/v1/instances"),
            "teams": await self.get("/v1/teams"),
            "attendants": await self.get("/v1/attendants"),
        }

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        base = {
            "t": self.t,
            "lang": self.lang,
            "user": self.session.user,
            "csrf": self.session.csrf_token,
            "f": self.filters,
            "periods": PERIODS,
            "path": self.request.url.path,
            "here": self.request.url.path + ("?" + self.request.url.query if self.request.url.query else ""),
            "llm": bool(getattr(self.request.app.state.settings, "llm_base_url", None)),
        }
        return templates.TemplateResponse(self.request, template, {**base, **context}, status_code=status_code)


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + ("?" + request.url.query if request.url.query else "")
    return RedirectResponse(f"/app/login?next={quote(target)}", status_code=303)


async def _page(request: Request, template: str, build: Any, **context: Any) -> Response:
    session = current(request)
    if session is None:
        return _login_redirect(request)
    view = View(request, session)
    try:
        built = await build(view)
        if isinstance(built, Response):
            return built
        options = await view.options()
    except PageError as exc:
        status = exc.answer.status if exc.answer.status in (400, 403, 404, 422) else 502
        return view.render("error.html", status_code=status, status=status, message=exc.answer.error)
    return view.render(template, page=template.removesuffix(".html"), options=options, **context, **built)


def _safe_next(target: str | None) -> str:
    """Only a path inside the dashboard (no open redirect)."""
    return target if target and target.startswith("/app") and not target.startswith("//") else "/app"


# --- login / logout / language ---------------------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/app", error: str | None = None) -> Response:
    lang = i18n.pick(request)
    token = new_login_csrf()
    response = templates.TemplateResponse(
        request,
        "login.html",
        {"t": i18n.translator(lang), "lang": lang, "next": _safe_next(next), "csrf": token, "error": error},
        status_code=429 if error == "too_many" else 401 if error else 200,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", secure=secure_cookies(request), path="/app"
    )
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "/app")))
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
        return RedirectResponse(f"/app/login?error=expired&next={quote(target)}", status_code=303)
    client = request.client.host if request.client else "-"
    rate = limiter(request)
    if rate.blocked(email, client):
        return login_form(request, next=target, error="too_many")
    user = authenticate(engine_of(request), email, password)
    if user is None:
        rate.failed(email, client)
        return login_form(request, next=target, error="bad_login")
    rate.succeeded(email, client)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        start_session(engine_of(request), user),
        max_age=int(SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/app")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = current(request)
    form = await request.form()
    if session is not None and csrf_ok(session.csrf_token, form.get("csrf")):
        end_session(engine_of(request), request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/app/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang")
def switch_language(request: Request, to: str = i18n.DEFAULT, next: str = "/app") -> Response:
    response = RedirectResponse(_safe_next(next), status_code=303)
    if to in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, to, max_age=365 * 86400, samesite="lax", path="/")
    return response


# --- pages -------------------------------------------------------------------------------------------------------
async def _data_months(view: View) -> list[dict[str, Any]]:
    """Months with messages in the longest range the API allows (the empty state's links)."""
    today = datetime.now(UTC).date()
    span = view.request.app.state.settings.metrics_max_span_days
    params = {**view.filters.api_params(), "from": (today - timedelta(days=span - 1)).isoformat(), "to": today}
    answer = await view.get("/v1/metrics/volume", {**params, "granularity": "month"})
    months = []
    for row in answer["rows"]:
        if row["total"]:
            first = date.fromisoformat(str(row["bucket_start"])[:10]).replace(day=1)
            last = min((first + timedelta(days=32)).replace(day=1) - timedelta(days=1), today)
            months.append({"label": f"{first:%m/%Y}", "from": first.isoformat(), "to": last.isoformat()})
    return months


@router.get("", response_class=HTMLResponse)
async def overview(request: Request) -> Response:
    async def build(view: View) -> dict[str, Any]:
        if not view.session.scope.instance_ids:
            return {"no_instances": True, "cards": [], "data_months": []}
        body = await view.metrics("/v1/metrics/overview")
        cards = []
        for key, kind in OVERVIEW_CARDS:
            change = body["change_pct"].get(key)
            tone = ""
            if change:
                good = (change > 0 and key in HIGHER_IS_BETTER) or (change < 0 and key in LOWER_IS_BETTER)
                bad = (change < 0 and key in HIGHER_IS_BETTER) or (change > 0 and key in LOWER_IS_BETTER)
                tone = "good" if good else "bad" if bad else ""
            cards.append(
                {
                    "key": key,
                    "kind": kind,
                    "value": body["current"].get(key),
                    "previous": body["previous"].get(key),
                    "change": change,
                    "tone": tone,
                }
            )
        empty = not any(body["current"].get(k) for k in ("messages_inbound", "messages_outbound", "backlog_end"))
        months = await _data_months(view) if empty else []
        daily = await view.metrics("/v1/metrics/volume", granularity="day")
        chart = {
            "x": [r["bucket"] for r in daily["rows"]],
            "series": [
                {"label": view.t("messages_inbound"), "values": [r["inbound"] for r in daily["rows"]]},
                {"label": view.t("messages_outbound"), "values": [r["outbound"] for r in daily["rows"]]},
            ],
        }
        return {
            "body": body,
            "cards": cards,
            "empty": empty,
            "data_months": months,
            "no_instances": False,
            "chart": chart,
        }

    return await _page(request, "overview.html", build)


@router.get("/volume", response_class=HTMLResponse)
async def volume(request: Request, granularity: str = "day") -> Response:
    granularity = granularity if granularity in ("hour", "day", "week", "month") else "day"

    async def build(view: View) -> dict[str, Any]:
        body = await view.metrics("/v1/metrics/volume", granularity=granularity)
        heat = await view.metrics("/v1/metrics/heatmap")
        peak = max((c["inbound_messages"] for c in heat["cells"]), default=0)
        grid = {(c["weekday"], c["hour"]): c for c in heat["cells"]}
        chart = {
            "x": [r["bucket"] for r in body["rows"]],
            "series": [
                {"label": view.t("inbound"), "values": [r["inbound"] for r in body["rows"]]},
                {"label": view.t("outbound"), "values": [r["outbound"] for r in body["rows"]]},
            ],
        }
        return {"body": body, "heat": heat, "grid": grid, "peak": peak, "chart": chart, "granularity": granularity}

    return await _page(request, "volume.html", build)


@router.get("/sla", response_class=HTMLResponse)
async def sla(request: Request) -> Response:
    async def build(view: View) -> dict[str, Any]:
        body = await view.metrics("/v1/metrics/sla")
        breached = await view.metrics("/v1/conversations/facts", frt_sla="breached", limit=50)
        chart = {
            "x": [r["day"] for r in body["rows"]],
            "series": [
                {
                    "label": view.t("frt_sla_achievement_pct"),
                    "values": [r["frt_achievement_pct"] for r in body["rows"]],
                },
                {
                    "label": view.t("resolution_sla_achievement_pct"),
                    "values": [r["resolution_achievement_pct"] for r in body["rows"]],
                },
            ],
        }
        return {"body": body, "breached": breached["rows"], "chart": chart}

    return await _page(request, "sla.html", build)


@router.get("/people", response_class=HTMLResponse)
async def people(request: Request, sort: str = "conversations_resolved") -> Response:
    sort = sort if sort in SORTS else "conversations_resolved"

    async def build(view: View) -> dict[str, Any]:
        attendants = await view.metrics("/v1/metrics/attendants", sort=sort)
        teams = await view.metrics("/v1/metrics/teams", sort=sort) if view.session.user.role != "attendant" else None
        return {"attendants": attendants["rows"], "teams": teams["rows"] if teams else [], "sort": sort, "sorts": SORTS}

    return await _page(request, "people.html", build)


@router.get("/calls", response_class=HTMLResponse)
async def calls(request: Request) -> Response:
    async def build(view: View) -> dict[str, Any]:
        body = await view.metrics("/v1/metrics/calls")
        chart = {
            "x": [r["day"] for r in body["rows"]],
            "series": [
                {"label": view.t("calls_offered"), "values": [r["offered"] for r in body["rows"]]},
                {"label": view.t("calls_missed"), "values": [r["missed"] for r in body["rows"]]},
            ],
        }
        return {"body": body, "chart": chart}

    return await _page(request, "calls.html", build)


@router.get("/insights", response_class=HTMLResponse)
async def insights(request: Request) -> Response:
    async def build(view: View) -> dict[str, Any]:
        answer_t = await data.call(
            request.app, view.session.scope, "GET", "/v1/metrics/topics", view.filters.api_params()
        )
        answer_s = await data.call(
            request.app, view.session.scope, "GET", "/v1/metrics/sentiment", view.filters.api_params()
        )
        if answer_t.status in (403, 404, 422):
            raise PageError(answer_t)
        return {
            "topics": answer_t.json() if answer_t.ok else None,
            "sentiment": answer_s.json() if answer_s.ok else None,
        }

    return await _page(request, "insights.html", build)


@router.get("/conversations/{conversation_id}", response_class=HTMLResponse)
async def conversation(request: Request, conversation_id: str) -> Response:
    """One conversation: its gold facts (clocks, SLA outcomes) for the day in the URL, and the live store's
    record with its messages when the live store has it."""

    async def build(view: View) -> dict[str, Any]:
        if view.session.user.role == "attendant":
            raise PageError(data.ApiAnswer(403, b'{"error": "attendants see only their own figures"}', {}))
        fact, cursor = None, None
        while fact is None:
            page = await view.metrics("/v1/conversations/facts", limit=1000, cursor=cursor)
            fact = next((r for r in page["rows"] if r["conversation_id"] == conversation_id), None)
            cursor = page["next_cursor"]
            if not cursor:
                break
        if "/" in conversation_id:  # cannot be a conversation id (and would change the API route)
            raise PageError(data.ApiAnswer(404, b'{"error": "conversation not found"}', {}))
        live = await data.call(request.app, view.session.scope, "GET", f"/v1/conversations/{conversation_id}")
        if fact is None and not live.ok:
            raise PageError(live)
        return {"fact": fact, "conv": live.json() if live.ok else None, "conversation_id": conversation_id}

    return await _page(request, "conversation.html", build)


@router.get("/csv/{table}")
async def csv_download(request: Request, table: str) -> Response:
    """The API's own CSV of a table, for the current filters (a link on every table)."""
    session = current(request)
    if session is None:
        return _login_redirect(request)
    view = View(request, session)
    path = CSV_TABLES.get(table)
    if path is None:
        return view.render("error.html", status_code=404, status=404, message="unknown table")
    extra = {k: v for k, v in request.query_params.items() if k in ("granularity", "sort", "frt_sla", "limit")}
    answer = await data.call(
        request.app, session.scope, "GET", path, {**view.filters.api_params(), **extra}, accept="text/csv"
    )
    if not answer.ok:
        return view.render("error.html", status_code=answer.status, status=answer.status, message=answer.error)
    return Response(
        answer.body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="beazap_{table}_{view.filters.start}_{view.filters.end}.csv"'
        },
    )
