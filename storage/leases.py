"""Named leases in the operational store: at most one holder of a role (e.g. the projector) at a time.

A lease is a row ``(name, holder, expires_at)``. :meth:`Lease.acquire` takes it when it is free,
expired or already ours; :meth:`Lease.fence` renews it **inside the caller's write transaction** and
raises :class:`LeaseLostError` when another holder took it over. Because the renewal and the caller's writes
commit together, every committed write was made while holding the lease: a standby that takes an
expired lease over has to update the same row, which (row lock on PostgreSQL, database write lock
on SQLite) waits for our transaction and then sees a renewed, unexpired lease. Works the same on
PostgreSQL and SQLite; no advisory locks or files.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.utc import as_utc
from storage.tables import leases


class LeaseLostError(RuntimeError):
    """Another holder owns the lease now; the caller's transaction must roll back."""


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    holder: str
    expires_at: datetime


def new_holder_id() -> str:
    """``<host>-<pid>-<random>``: readable in ``beazap ops leases`` and unique per process start."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass
class Lease:
    """One process's claim on the lease ``name`` (``ttl``: how long a silent holder keeps it)."""

    engine: Engine
    name: str
    ttl: timedelta = timedelta(seconds=30)
    holder: str = field(default_factory=new_holder_id)

    def acquire(self) -> bool:
        """Take the lease if it is free, expired or ours; True when we hold it afterwards."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(leases)
                .where(
                    leases.c.name == self.name,
                    (leases.c.holder == self.holder) | (leases.c.expires_at < now),
                )
                .values(holder=self.holder, expires_at=now + self.ttl, acquired_at=now)
            ).rowcount
            if taken == 1:
                return True
            if conn.execute(select(leases.c.name).where(leases.c.name == self.name)).first() is not None:
                return False
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(leases).values(
                        name=self.name, holder=self.holder, expires_at=now + self.ttl, acquired_at=now
                    )
                )
        except IntegrityError:
            return False  # another process created it first
        return True

    def fence(self, conn: Connection) -> None:
        """Renew the lease inside ``conn``'s transaction; :class:`LeaseLostError` if it is not ours."""
        renewed = conn.execute(
            update(leases)
            .where(leases.c.name == self.name, leases.c.holder == self.holder)
            .values(expires_at=datetime.now(UTC) + self.ttl)
        ).rowcount
        if renewed != 1:
            raise LeaseLostError(f"lease {self.name!r} is held by another process")

    def renew(self) -> None:
        """Renew in a transaction of its own (an idle holder keeps its lease this way)."""
        with self.engine.begin() as conn:
            self.fence(conn)

    def release(self) -> None:
        """Give the lease up (a standby takes it at once instead of waiting for expiry)."""
        with self.engine.begin() as conn:
            conn.execute(delete(leases).where(leases.c.name == self.name, leases.c.holder == self.holder))


def current(engine: Engine, name: str) -> LeaseInfo | None:
    """Who holds ``name`` and until when (None when nobody ever took it or it was released)."""
    with engine.connect() as conn:
        row = conn.execute(select(leases.c.holder, leases.c.expires_at).where(leases.c.name == name)).first()
    return None if row is None else LeaseInfo(name, row.holder, as_utc(row.expires_at))
