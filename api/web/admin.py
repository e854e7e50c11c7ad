"""The settings page (admins): instances, time zone, business hours, SLA targets, teams, attendants,
users and API tokens.

Instance, team and attendant changes go through the operational API's own endpoints (same
validation, same errors) via :mod:`api.web.data`; users and tokens through ``storage.users`` and
``storage.tokens``, as the CLI does. Every form carries the session's CSRF token.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.web import data
from api.web.routes import PageError, View, _login_redirect
from api.web.session import csrf_ok, current, engine_of
from storage.tokens import SCOPES, create_token, list_tokens, revoke_account_token
from storage.users import ROLES, UserError, create_user, deactivate_user, list_users

router = APIRouter(prefix="/app/settings", include_in_schema=False)


async def _admin_view(request: Request) -> View | Response:
    session = current(request)
    if session is None:
        return _login_redirect(request)
    view = View(request, session)
    if session.user.role != "admin":
        return view.render("error.html", status_code=403, status=403, message="")
    return view


async def _render(
    view: View, notice: str | None = None, error: str | None = None, secret: str | None = None
) -> Response:
    try:
        instances = await view.get("/v1/instances")
        teams = await view.get("/v1/teams")
        attendants = await view.get("/v1/attendants")
    except PageError as exc:
        return view.render(
            "error.html", status_code=exc.answer.status, status=exc.answer.status, message=exc.answer.error
        )
    account = view.session.user.account_id
    engine = engine_of(view.request)
    return view.render(
        "settings.html",
        status_code=422 if error else 200,
        page="settings",
        instances=instances,
        teams=teams,
        attendants=attendants,
        users=list_users(engine, account),
        tokens=list_tokens(engine, account),
        roles=ROLES,
        scopes=SCOPES,
        notice=notice,
        error=error,
        secret=secret,
        pretty=lambda value: json.dumps(value, ensure_ascii=False, indent=1) if value else "",
    )


def _api_error(answer: Any) -> str:
    body = answer.json() if answer.body else {}
    detail = body.get("detail") if isinstance(body, dict) else None
    message = body.get("error", "") if isinstance(body, dict) else ""
    if isinstance(detail, list):
        message += ": " + "; ".join(f"{'.'.join(map(str, d.get('loc', [])[1:]))} {d.get('msg', '')}" for d in detail)
    return message or f"HTTP {answer.status}"


def _json_field(form: Any, name: str) -> Any:
    text = str(form.get(name, "")).strip()
    return json.loads(text) if text else None


@router.get("")
async def settings_page(request: Request) -> Response:
    view = await _admin_view(request)
    return view if isinstance(view, Response) else await _render(view)


@router.post("/{action}")
async def settings_action(request: Request, action: str) -> Response:
    view = await _admin_view(request)
    if isinstance(view, Response):
        return view
    form = await request.form()
    t = view.t
    if not csrf_ok(view.session.csrf_token, form.get("csrf")):
        return await _render(view, error=t("login_expired"))
    account, engine = view.session.user.account_id, engine_of(request)
    secret = None
    try:
        if action == "instance":
            body: dict[str, Any] = {"timezone": str(form.get("timezone", "")).strip() or None}
            body |= {
                "business_hours": _json_field(form, "business_hours"),
                "sla_policy": _json_field(form, "sla_policy"),
            }
            answer = await view.send("PATCH", f"/v1/instances/{data.segment(form.get('instance_id'))}", body)
        elif action == "add-instance":
            body = {k: str(form.get(k, "")).strip() or None for k in ("id", "display_name", "timezone")}
            answer = await view.send("POST", "/v1/instances", {k: v for k, v in body.items() if v is not None})
            secret = (answer.json() or {}).get("webhook_token") if answer.ok else None
        elif action == "webhook":
            answer = await view.send("POST", f"/v1/instances/{data.segment(form.get('instance_id'))}/webhook", {})
            secret = (answer.json() or {}).get("webhook_token") if answer.ok else None
        elif action == "team":
            answer = await view.send(
                "POST", "/v1/teams", {"instance_id": form.get("instance_id"), "name": form.get("name")}
            )
        elif action == "attendant":
            body = {k: str(form.get(k, "")).strip() or None for k in ("instance_id", "name", "team_id", "email")}
            answer = await view.send("POST", "/v1/attendants", {k: v for k, v in body.items() if v is not None})
        elif action == "user":
            create_user(
                engine,
                str(form.get("email", "")),
                str(form.get("password", "")),
                str(form.get("role", "")),
                account,
                attendant_id=str(form.get("attendant_id", "")).strip() or None,
            )
            return await _render(view, notice=t("saved"))
        elif action == "remove-user":
            if not deactivate_user(engine, account, str(form.get("user_id", ""))):
                return await _render(view, error=t("error_404"))
            return await _render(view, notice=t("saved"))
        elif action == "token":
            scope = str(form.get("scope", ""))
            if scope not in SCOPES:
                return await _render(view, error=f"{t('scope')}: {', '.join(SCOPES)}")
            secret = create_token(engine, account, scope, str(form.get("name", "")).strip() or "web")
            return await _render(view, notice=t("shown_once"), secret=secret)
        elif action == "revoke-token":
            if not revoke_account_token(engine, account, str(form.get("token_id", ""))):
                return await _render(view, error=t("error_404"))
            return await _render(view, notice=t("saved"))
        else:
            return view.render("error.html", status_code=404, status=404, message="")
    except json.JSONDecodeError as exc:
        return await _render(view, error=f"{t('invalid_json')}: {exc.msg} ({exc.lineno}:{exc.colno})")
    except (UserError, ValueError) as exc:
        return await _render(view, error=str(exc))
    if not answer.ok:
        return await _render(view, error=_api_error(answer))
    return await _render(view, notice=t("shown_once") if secret else t("saved"), secret=secret)
