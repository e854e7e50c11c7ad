"""Find and rewrite one subject's rows in the operational store (SQLite or PostgreSQL).

The store's tables are introspected (not listed by hand), so tables added by other parts of
BeaZap are covered as soon as they exist: every text/JSON column is searched with ``LIKE`` for the
subject's identifiers and mapped values (conversation ids), and matching rows are rewritten by
primary key with the same :class:`~governance.subject.Scrubber` rules as the lake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from governance.subject import ERASED, TEXT_KEYS, Scrubber

# Tables that hold no contact data (tenancy, credentials, bookkeeping).
SKIP_TABLES = frozenset({"alembic_version", "accounts", "api_tokens", "instances", "erasure_audit"})


@dataclass
class StoreScrub:
    table: str
    rows: int


def _text_like(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, sa.String | sa.Text | sa.JSON | sa.Unicode | sa.UnicodeText) or (
        column.type.__class__.__name__ in {"JSONB", "JSON", "VARCHAR", "TEXT", "CHAR"}
    )


def _is_json(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, sa.JSON) or column.type.__class__.__name__ in {"JSONB", "JSON"}


def reflect(engine: Engine) -> list[sa.Table]:
    """Every ops-store table that may hold contact data (reflected from the live database)."""
    meta = sa.MetaData()
    meta.reflect(bind=engine)
    return [t for name, t in sorted(meta.tables.items()) if name not in SKIP_TABLES]


def _match_clause(table: sa.Table, needles: list[str], values: list[str]) -> sa.ColumnElement[bool] | None:
    terms: list[sa.ColumnElement[bool]] = []
    for column in table.columns:
        if not _text_like(column):
            continue
        as_text = sa.cast(column, sa.Text) if _is_json(column) else column
        terms.extend(as_text.contains(n, autoescape=True) for n in needles)
        if values and not _is_json(column):
            terms.append(column.in_(values))
    return sa.or_(*terms) if terms else None


def find_rows(engine: Engine, table: sa.Table, scrubber: Scrubber) -> list[dict[str, Any]]:
    """Rows of ``table`` that mention the subject (SQL prefilter + exact check in Python)."""
    needles = scrubber.subject.needles + (["@lid"] if scrubber.lid_hashes else [])
    clause = _match_clause(table, needles, list(scrubber.value_map))
    if clause is None:
        return []
    if scrubber.instances is not None and "instance_id" in table.c:
        clause = sa.and_(clause, table.c.instance_id.in_(sorted(scrubber.instances)))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(table).where(clause))]
    return [r for r in rows if _row_matches(table, r, scrubber)]


def _row_matches(table: sa.Table, row: dict[str, Any], scrubber: Scrubber) -> bool:
    import orjson

    for column in table.columns:
        value = row.get(column.name)
        if value is None:
            continue
        text = value if isinstance(value, str) else orjson.dumps(value).decode() if _is_json(column) else None
        if text is not None and (text in scrubber.value_map or scrubber.matches(text)):
            return True
    return False


def scrub_row(table: sa.Table, row: dict[str, Any], scrubber: Scrubber) -> dict[str, Any]:
    """The new values of a matching row (only the columns that change)."""
    changes: dict[str, Any] = {}
    for column in table.columns:
        value = row.get(column.name)
        if value is None:
            continue
        if _is_json(column):
            new: Any = scrubber.document(value, erase_text=True)
        elif isinstance(value, str):
            if column.name.lower() in TEXT_KEYS:
                new = ERASED if value else value
            else:
                new = scrubber.text(value, column.name)
                if new is None and not column.nullable:
                    new = scrubber.pseudo_jid
        else:
            continue
        if new != value:
            changes[column.name] = new
    return changes


def scrub_store(engine: Engine, scrubber: Scrubber, dry_run: bool = False) -> list[StoreScrub]:
    """Rewrite every ops-store row that mentions the subject; one transaction per table."""
    results: list[StoreScrub] = []
    for table in reflect(engine):
        rows = find_rows(engine, table, scrubber)
        if not rows:
            continue
        results.append(StoreScrub(table=table.name, rows=len(rows)))
        if dry_run:
            continue
        pk = list(table.primary_key.columns) or list(table.columns)
        with engine.begin() as conn:
            for row in rows:
                changes = scrub_row(table, row, scrubber)
                if not changes:
                    continue
                where = sa.and_(*(c == row[c.name] if row[c.name] is not None else c.is_(None) for c in pk))
                conn.execute(sa.update(table).where(where).values(**changes))
    return results


def scan_store(engine: Engine, scrubber: Scrubber) -> list[StoreScrub]:
    """Tables (with row counts) that still mention the subject; empty after a complete erasure."""
    return [StoreScrub(table=t.name, rows=n) for t in reflect(engine) if (n := len(find_rows(engine, t, scrubber)))]
