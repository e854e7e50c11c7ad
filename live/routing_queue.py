"""The routing job queue (``llm_jobs``): enqueue, claim with a lease, finish, retry with backoff.

PostgreSQL claims with ``SELECT … FOR UPDATE SKIP LOCKED`` so any number of workers share the
queue without blocking each other; SQLite (one writer at a time) claims with a single atomic
``UPDATE … RETURNING``. A claim is a lease: jobs of a worker that died come back when
``locked_until`` passes. Enqueuing is an ``INSERT … ON CONFLICT DO NOTHING`` (one job per
conversation), safe inside the projector's or assignment's transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.tables import llm_jobs

KIND_ROUTE = "route"
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    instance_id: str
    conversation_id: str
    contact_key: str | None
    attempts: int


def enqueue(
    conn: Connection,
    instance_id: str,
    conversation_id: str,
    *,
    contact_key: str | None = None,
    run_after: datetime | None = None,
    kind: str = KIND_ROUTE,
) -> bool:
    """Queue ``kind`` work for a conversation (no-op when it was queued before); True if inserted."""
    values = {
        "id": "job_" + uuid.uuid4().hex,
        "kind": kind,
        "instance_id": instance_id,
        "conversation_id": conversation_id,
        "contact_key": contact_key,
        "status": "queued",
        "attempts": 0,
        "run_after": run_after or datetime.now(UTC),
    }
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = dialect_insert(llm_jobs).values(**values).on_conflict_do_nothing(index_elements=["kind", "conversation_id"])
    return conn.execute(stmt).rowcount == 1


def _claimable(now: datetime) -> Any:
    return or_(
        and_(llm_jobs.c.status == "queued", llm_jobs.c.run_after <= now),
        and_(llm_jobs.c.status == "running", llm_jobs.c.locked_until < now),
    )


def claim(
    engine: Engine, worker_id: str, *, limit: int = 10, lease_seconds: float = 120.0, kind: str = KIND_ROUTE
) -> list[Job]:
    """Take up to ``limit`` due jobs for ``worker_id`` (oldest first), marking them running."""
    now = datetime.now(UTC)
    lease = now + timedelta(seconds=lease_seconds)
    cols = (
        llm_jobs.c.id,
        llm_jobs.c.kind,
        llm_jobs.c.instance_id,
        llm_jobs.c.conversation_id,
        llm_jobs.c.contact_key,
        llm_jobs.c.attempts,
    )
    with engine.begin() as conn:
        due = select(llm_jobs.c.id).where(llm_jobs.c.kind == kind, _claimable(now))
        due = due.order_by(llm_jobs.c.run_after).limit(limit)
        if conn.dialect.name == "postgresql":
            ids = list(conn.execute(due.with_for_update(skip_locked=True)).scalars())
            if not ids:
                return []
            where = llm_jobs.c.id.in_(ids)
        else:
            where = and_(llm_jobs.c.id.in_(due.scalar_subquery()), _claimable(now))
        rows = conn.execute(
            update(llm_jobs)
            .where(where)
            .values(
                status="running",
                locked_by=worker_id,
                locked_until=lease,
                attempts=llm_jobs.c.attempts + 1,
                updated_at=now,
            )
            .returning(*cols)
        ).all()
    return [Job(*row) for row in rows]


def finish(conn: Connection, job: Job, worker_id: str, result: dict[str, Any]) -> bool:
    """Mark a job done (only if this worker still holds it); False when the lease was lost."""
    res = conn.execute(
        update(llm_jobs)
        .where(llm_jobs.c.id == job.id, llm_jobs.c.locked_by == worker_id, llm_jobs.c.status == "running")
        .values(status="done", result=result, locked_until=None, updated_at=func.now())
    )
    return res.rowcount == 1


def retry_later(engine: Engine, job: Job, worker_id: str, error: str, *, base_delay: float = 2.0) -> str:
    """Put a job back with exponential backoff, or mark it failed after ``MAX_ATTEMPTS``; returns the status."""
    status = "failed" if job.attempts >= MAX_ATTEMPTS else "queued"
    delay = timedelta(seconds=base_delay * (2 ** max(0, job.attempts - 1)))
    with engine.begin() as conn:
        conn.execute(
            update(llm_jobs)
            .where(llm_jobs.c.id == job.id, llm_jobs.c.locked_by == worker_id)
            .values(
                status=status,
                last_error=error[:500],
                run_after=datetime.now(UTC) + delay,
                locked_until=None,
                updated_at=func.now(),
            )
        )
    return status


def counts(engine: Engine) -> dict[str, int]:
    """Jobs per status (for the CLI and health checks)."""
    with engine.connect() as conn:
        rows = conn.execute(select(llm_jobs.c.status, func.count()).group_by(llm_jobs.c.status)).all()
    return {status: int(n) for status, n in rows}


def purge(engine: Engine, older_than: timedelta = timedelta(days=7)) -> int:
    """Delete finished (done/failed) jobs last updated before ``older_than`` ago; returns rows deleted."""
    cutoff = datetime.now(UTC) - older_than
    with engine.begin() as conn:
        result = conn.execute(
            delete(llm_jobs).where(llm_jobs.c.status.in_(("done", "failed")), llm_jobs.c.updated_at < cutoff)
        )
    return result.rowcount or 0
