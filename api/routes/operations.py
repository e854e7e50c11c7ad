"""API routes: operations (filled in by its issue)."""

from fastapi import APIRouter

router = APIRouter()
