"""Admin API: LGPD erasure of one contact and its verification (admin tokens only).

``POST /v1/admin/erasures`` erases the contact in the caller's instances (bronze, silver, gold and
the operational store) and returns the audit record id; ``POST /v1/admin/erasures/verify`` proves
nothing remains. Neither response contains the phone number: the subject is a keyed hash.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field

from api.auth import AdminScope

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class ErasureRequest(BaseModel):
    phone: str = Field(..., min_length=8, max_length=40, description="The contact's phone number (+55…).")
    dry_run: bool = Field(False, description="Only count what would be erased.")


class VerifyRequest(BaseModel):
    phone: str = Field(..., min_length=8, max_length=40)


def _context(request: Request) -> tuple[Any, Any]:
    from storage.db import get_engine
    from storage.lake import Lake

    settings = request.app.state.settings
    engine = getattr(request.app.state, "engine", None) or get_engine(settings)
    return Lake.from_settings(settings), engine


def _check_phone(phone: str) -> None:
    from governance.subject import phone_variants

    try:
        phone_variants(phone)
    except ValueError:
        raise HTTPException(422, "not a valid phone number") from None


@router.post("/erasures", summary="Erase one contact (LGPD)", status_code=status.HTTP_200_OK)
async def create_erasure(body: ErasureRequest, scope: AdminScope, request: Request) -> dict[str, Any]:
    """Irreversibly anonymize one contact in the caller's instances; returns the audit record."""
    from governance import erasure

    _check_phone(body.phone)
    lake, engine = _context(request)
    report = await asyncio.to_thread(
        erasure.erase_contact,
        lake,
        engine,
        body.phone,
        requested_by=f"api:{scope.account_id}:{scope.token_id}",
        dry_run=body.dry_run,
        instances=frozenset(scope.instance_ids),
    )
    return report.as_dict()


@router.post("/erasures/verify", summary="Verify an erasure")
async def verify_erasure(body: VerifyRequest, scope: AdminScope, request: Request) -> dict[str, Any]:
    """Scan every lake file and the ops store for the contact (in the caller's instances)."""
    from governance import erasure

    _check_phone(body.phone)
    lake, engine = _context(request)
    report = await asyncio.to_thread(
        erasure.verify_erasure, lake, engine, body.phone, instances=frozenset(scope.instance_ids)
    )
    return report.as_dict()
