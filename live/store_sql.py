"""Small SQL helpers shared by the projector and the operational services (both dialects).

``insert_ignore``/``upsert`` pick the PostgreSQL or SQLite ``ON CONFLICT`` form; ``core.utc.as_utc`` turns the
naive datetimes SQLite returns into UTC-aware ones so Python comparisons work on both databases.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from core.utc import as_utc
from storage.tables import instance_watermarks, projector_cursors

T = TypeVar("T")


def live_as_of(conn: Connection, now: datetime | None = None) -> datetime:
    """The live store's as-of instant: the processing time (``now``), bounded by what the projector has
    read from bronze (the latest receipt or message time of any instance), as silver bounds its run's."""
    latest = conn.execute(select(func.max(instance_watermarks.c.watermark))).scalar()
    wall = now or datetime.now(UTC)
    return min(wall, as_utc(latest)) if latest is not None else wall


def insert_ignore(conn: Connection, table: Table) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for ``conn``'s dialect."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def upsert(conn: Connection, table: Table, keys: Sequence[str], update_cols: Sequence[str]) -> Any:
    """``INSERT … ON CONFLICT (keys) DO UPDATE SET col = excluded.col``."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    return stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in update_cols})


def chunks(items: Sequence[T] | Iterable[T], size: int = 900) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_cursor(conn: Connection, name: str) -> tuple[int, int]:
    """(last fully applied Delta version, rows applied of the next version); (-1, 0) when new."""
    row = conn.execute(
        select(projector_cursors.c.version, projector_cursors.c.row_offset).where(projector_cursors.c.name == name)
    ).first()
    return (-1, 0) if row is None else (int(row.version), int(row.row_offset))


def write_cursor(conn: Connection, name: str, version: int, row_offset: int) -> None:
    conn.execute(
        upsert(conn, projector_cursors, ["name"], ["version", "row_offset", "updated_at"]),
        {"name": name, "version": version, "row_offset": row_offset, "updated_at": datetime.now(UTC)},
    )
