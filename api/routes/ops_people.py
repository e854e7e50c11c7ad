"""Operational API: teams and attendants (CRUD, capacity and availability)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from api.auth import AdminScope, Scope, WriteScope
from api.routes.ops_common import ERRORS, AttendantOut, PatchModel, TeamOut, engine_of
from api.routes.ops_common import translate_errors as errors
from storage import ops_repo

router = APIRouter(prefix="/v1", tags=["operations: teams and attendants"], responses=ERRORS)


class TeamIn(BaseModel):
    instance_id: str
    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(default=None, max_length=64)


class TeamPatch(PatchModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)


class AttendantIn(BaseModel):
    instance_id: str
    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(default=None, max_length=64)
    team_id: str | None = None
    email: str | None = Field(default=None, max_length=320)
    capacity: int = Field(default=5, ge=0, le=1000)
    available: bool = True


class AttendantPatch(PatchModel):
    nullable = frozenset({"team_id", "email"})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    team_id: str | None = None
    email: str | None = None
    capacity: int | None = Field(default=None, ge=0, le=1000)
    available: bool | None = None
    active: bool | None = None


@router.get("/teams", response_model=list[TeamOut], summary="List teams")
@errors
def list_teams(request: Request, scope: Scope, instance_id: str | None = None) -> list[dict[str, Any]]:
    return ops_repo.list_teams(engine_of(request), scope, instance_id)


@router.post("/teams", response_model=TeamOut, status_code=status.HTTP_201_CREATED, summary="Create a team")
@errors
def create_team(request: Request, scope: AdminScope, body: TeamIn) -> dict[str, Any]:
    return ops_repo.create_team(engine_of(request), scope, body.instance_id, body.name, body.id)


@router.get("/teams/{team_id}", response_model=TeamOut, summary="One team")
@errors
def get_team(request: Request, scope: Scope, team_id: str) -> dict[str, Any]:
    return ops_repo.get_team(engine_of(request), scope, team_id)


@router.patch("/teams/{team_id}", response_model=TeamOut, summary="Rename a team")
@errors
def update_team(request: Request, scope: AdminScope, team_id: str, body: TeamPatch) -> dict[str, Any]:
    return ops_repo.update_team(engine_of(request), scope, team_id, body.model_dump(exclude_unset=True))


@router.delete("/teams/{team_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a team")
@errors
def delete_team(request: Request, scope: AdminScope, team_id: str) -> Response:
    ops_repo.delete_team(engine_of(request), scope, team_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/attendants", response_model=list[AttendantOut], summary="List attendants")
@errors
def list_attendants(
    request: Request, scope: Scope, instance_id: str | None = None, team_id: str | None = None
) -> list[dict[str, Any]]:
    return ops_repo.list_attendants(engine_of(request), scope, instance_id, team_id)


@router.post("/attendants", response_model=AttendantOut, status_code=status.HTTP_201_CREATED, summary="Add one")
@errors
def create_attendant(request: Request, scope: AdminScope, body: AttendantIn) -> dict[str, Any]:
    return ops_repo.create_attendant(
        engine_of(request), scope, body.instance_id, body.model_dump(exclude={"instance_id"})
    )


@router.get("/attendants/{attendant_id}", response_model=AttendantOut, summary="One attendant")
@errors
def get_attendant(request: Request, scope: Scope, attendant_id: str) -> dict[str, Any]:
    return ops_repo.get_attendant(engine_of(request), scope, attendant_id)


@router.patch("/attendants/{attendant_id}", response_model=AttendantOut, summary="Change capacity, availability…")
@errors
def update_attendant(request: Request, scope: WriteScope, attendant_id: str, body: AttendantPatch) -> dict[str, Any]:
    """Agents may toggle availability; the rest needs an admin token."""
    changes = body.model_dump(exclude_unset=True)
    if not scope.is_admin and set(changes) - {"available"}:
        from fastapi import HTTPException

        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin scope required to change more than availability")
    return ops_repo.update_attendant(engine_of(request), scope, attendant_id, changes)


@router.delete("/attendants/{attendant_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Deactivate")
@errors
def delete_attendant(request: Request, scope: AdminScope, attendant_id: str) -> Response:
    ops_repo.delete_attendant(engine_of(request), scope, attendant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
