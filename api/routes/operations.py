"""Operational API (issue 6): instances, teams, attendants, live conversations, actions, sending and
live SLA. The endpoints live in ``api/routes/ops_*.py``; this module gathers them."""

from fastapi import APIRouter

from api.routes import ops_conversations, ops_instances, ops_people

router = APIRouter()
router.include_router(ops_instances.router)
router.include_router(ops_people.router)
router.include_router(ops_conversations.router)
