"""Tenant authentication for the metrics and operational APIs.

``Authorization: Bearer <token>`` resolves to a :class:`~storage.tokens.TenantScope`; routes then
restrict every query to ``scope.instance_ids``. Asking for another tenant's instance answers 404
(not 403), so ids of other tenants are not even confirmed to exist.

A dashboard user's session cookie (``storage.users``) is accepted like a token for reading (GET/HEAD).
A cookie rides along on cross-site requests, so a write with a cookie also needs the session's CSRF
token in the ``X-CSRF-Token`` header (a custom header a cross-site form cannot send and a cross-site
``fetch`` cannot send without a CORS grant, which this API never gives); without it the write answers
401 as if unauthenticated, with a wrong one 403. The web app calls the API in-process with the user's
scope already resolved (``request.scope[WEB_SCOPE_KEY]``, which no client can set). An attendant user
reads only the metrics and conversation facts of their own attendant id, and works in the console on
their own instance (``CONSOLE_PATHS``): reads quick replies, and reads, acts on and replies to their own
and the unassigned conversations (``api/routes/ops_conversations.py``), contacts masked (``contact_for``).
The account-wide live stream is not theirs: the queue page streams their view (``/app/queue/stream``).
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.logging import mask_phones
from storage.db import get_engine
from storage.ops_repo import NotFoundError, get_attendant, scoped_instances
from storage.tokens import TenantScope, resolve_token
from storage.users import resolve_session

SESSION_COOKIE = "beazap_session"
WEB_SCOPE_KEY = "beazap.web_scope"
ATTENDANT_PATHS = ("/v1/metrics/", "/v1/conversations/facts")
CONSOLE_PATHS = ("/v1/conversations", "/v1/quick-replies")
CSRF_HEADER = "X-CSRF-Token"

PHONE_ROLES = frozenset({"admin", "supervisor"})  # the dashboard roles that read contacts' phone numbers


def may_see_phone(role: str | None) -> bool:
    return role in PHONE_ROLES


def contact_label(contact_key: str, role: str | None) -> str:
    """The contact as a dashboard role may read it: the number, or the number masked like in the logs."""
    return contact_key if may_see_phone(role) else mask_phones(contact_key)


def contact_for(scope: TenantScope, contact_key: str) -> str:
    """The contact as the caller may read it: API tokens read the number, dashboard users by their role."""
    return contact_key if scope.role is None else contact_label(contact_key, scope.role)


_bearer = HTTPBearer(auto_error=False, description="Tenant API token (`beazap token create`).")


def get_scope(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TenantScope:
    """Resolve the caller's bearer token or session cookie (401 JSON error when missing, unknown or revoked)."""
    web_scope = request.scope.get(WEB_SCOPE_KEY)
    if isinstance(web_scope, TenantScope):
        return _check_role(request, web_scope)
    engine = getattr(request.app.state, "engine", None) or get_engine()
    if credentials is None or not credentials.credentials:
        cookie = request.cookies.get(SESSION_COOKIE)
        given = request.headers.get(CSRF_HEADER)
        if cookie and (request.method in ("GET", "HEAD") or given):
            session = resolve_session(engine, cookie)
            if session is not None:
                if request.method not in ("GET", "HEAD") and not hmac.compare_digest(
                    session.csrf_token.encode(), (given or "").encode()
                ):
                    raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid CSRF token")
                return _check_role(request, session.scope)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    scope = resolve_token(engine, credentials.credentials)
    if scope is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"}
        )
    return scope


def _check_role(request: Request, scope: TenantScope) -> TenantScope:
    """An attendant user reads only their own figures: metrics and facts filtered by their attendant id."""
    if scope.role != "attendant":
        return scope
    own = [scope.attendant_id] if scope.attendant_id else []
    path = request.url.path
    if own and path.startswith(CONSOLE_PATHS) and not path.startswith(ATTENDANT_PATHS):
        # the console, on the attendant's own instance: read quick replies; act on and reply to
        # conversations (their own and the unassigned ones, api/routes/ops_conversations.py)
        engine = getattr(request.app.state, "engine", None) or get_engine()
        try:
            instance = get_attendant(engine, scope, own[0])["instance_id"]
        except NotFoundError:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "this login is not linked to an attendant") from None
        narrowed = dataclasses.replace(scope, instance_ids=frozenset({instance}))
        return dataclasses.replace(narrowed, scope="agent") if path.startswith("/v1/conversations") else narrowed
    if not path.startswith(ATTENDANT_PATHS) or request.query_params.getlist("attendant_id") != own or not own:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "attendants see only their own figures")
    return scope


def require_write(scope: Annotated[TenantScope, Depends(get_scope)]) -> TenantScope:
    if not scope.can_write:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this token is read-only")
    return scope


def require_admin(scope: Annotated[TenantScope, Depends(get_scope)]) -> TenantScope:
    if not scope.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin scope required")
    return scope


def allowed_instances(scope: TenantScope, requested: Iterable[str] | None) -> list[str]:
    """The instances a query may touch: the requested ones (404 if any is not the caller's) or all."""
    try:
        return scoped_instances(scope, requested)
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


Scope = Annotated[TenantScope, Depends(get_scope)]
WriteScope = Annotated[TenantScope, Depends(require_write)]
AdminScope = Annotated[TenantScope, Depends(require_admin)]
