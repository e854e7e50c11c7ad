"""A two-account world for the live queue page: instances, a team, attendants, users and open conversations.

Account ``acct-a``: instances ``qa-1`` (team ``qa-1-sales``, attendants ``ana`` and ``bob``) and
``qa-2``; users admin, supervisor, attendant (``ana``) and attendant2 (``bob``). Account ``acct-b``:
instance ``qb-1`` and a supervisor. :func:`add_conversation` writes an open conversation straight to
the store, as the projector would (the database trigger records the change for the live stream).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from storage import ops_repo
from storage.instances import add_instance
from storage.tables import conversations, instances
from storage.tokens import TenantScope, create_token
from storage.users import create_user

PASSWORD = "correct horse battery"
USERS = {
    "admin": "admin@qa.example",
    "supervisor": "super@qa.example",
    "attendant": "ana@qa.example",
    "attendant2": "bob@qa.example",
    "supervisor_b": "super@qb.example",
}
A_SCOPE = TenantScope("acct-a", "setup", "admin", frozenset({"qa-1", "qa-2"}))


def seed(engine: Engine) -> dict[str, str]:
    """The accounts, instances, team, attendants and users; returns admin API tokens per account."""
    add_instance(engine, "qa-1", "acct-a", token="hook-qa-1")
    add_instance(engine, "qa-2", "acct-a", token="hook-qa-2")
    add_instance(engine, "qb-1", "acct-b", token="hook-qb-1")
    ops_repo.create_team(engine, A_SCOPE, "qa-1", "Vendas", team_id="qa-1-sales")
    for att in ("ana", "bob"):
        ops_repo.create_attendant(
            engine, A_SCOPE, "qa-1", {"id": att, "name": att.title(), "team_id": "qa-1-sales", "capacity": 50}
        )
    create_user(engine, USERS["admin"], PASSWORD, "admin", "acct-a")
    create_user(engine, USERS["supervisor"], PASSWORD, "supervisor", "acct-a")
    create_user(engine, USERS["attendant"], PASSWORD, "attendant", "acct-a", attendant_id="ana")
    create_user(engine, USERS["attendant2"], PASSWORD, "attendant", "acct-a", attendant_id="bob")
    create_user(engine, USERS["supervisor_b"], PASSWORD, "supervisor", "acct-b")
    return {"a": create_token(engine, "acct-a", "admin"), "b": create_token(engine, "acct-b", "admin")}


def add_conversation(
    engine: Engine,
    conv_id: str,
    *,
    instance: str = "qa-1",
    phone: str = "5511987650000",
    opened: datetime | None = None,
    assignee: str | None = None,
    team: str | None = None,
    status: str = "open",
) -> None:
    opened = opened or datetime.now(UTC) - timedelta(minutes=1)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(conversations).values(
                id=conv_id,
                instance_id=instance,
                contact_key=f"+{phone}",
                origin="inbound",
                opening_message_id="m-" + conv_id,
                opened_at=opened,
                last_message_at=opened,
                awaiting_since=opened,
                status=status,
                assignee_id=assignee,
                team_id=team,
                inbound_count=1,
            )
        )


def add_many(engine: Engine, n: int, instance: str = "qa-1", prefix: str = "bulk") -> None:
    """``n`` open conversations in one statement (the benchmark's 5,000)."""
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        opened = now - timedelta(seconds=30 + i * 7)
        rows.append(
            {
                "id": f"{prefix}-{i:05d}",
                "instance_id": instance,
                "contact_key": f"+55119{i:08d}",
                "origin": "inbound",
                "opening_message_id": f"m-{prefix}-{i}",
                "opened_at": opened,
                "last_message_at": opened,
                "awaiting_since": opened,
                "status": "open",
                "assignee_id": ("ana", "bob", None)[i % 3],
                "team_id": "qa-1-sales" if i % 2 else None,
                "inbound_count": 1,
            }
        )
    with engine.begin() as conn:
        conn.execute(sa.insert(conversations), rows)


def set_policy(engine: Engine, instance: str, policy: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(instances).where(instances.c.id == instance).values(sla_policy=policy))


def login(client: Any, who: str) -> Any:
    """Log ``client`` (a TestClient) in through the form; returns it."""
    form = client.get("/app/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    r = client.post(
        "/app/login",
        data={"email": USERS.get(who, who), "password": PASSWORD, "csrf": csrf, "next": "/app"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:300]
    return client
