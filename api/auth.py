"""Tenant authentication for the metrics and operational APIs.

``Authorization: Bearer <token>`` resolves to a :class:`~storage.tokens.TenantScope`; routes then
restrict every query to ``scope.instance_ids``. Asking for another tenant's instance answers 404
(not 403), so ids of other tenants are not even confirmed to exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from storage.db import get_engine
from storage.ops_repo import NotFoundError, scoped_instances
from storage.tokens import TenantScope, resolve_token

_bearer = HTTPBearer(auto_error=False, description="Tenant API token (`beazap token create`).")


def get_scope(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TenantScope:
    """Resolve the caller's bearer token (401 JSON error when missing, unknown or revoked)."""
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    engine = getattr(request.app.state, "engine", None) or get_engine()
    scope = resolve_token(engine, credentials.credentials)
    if scope is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"}
        )
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
