"""Operational-store side of the LLM: answer cache and per-tenant daily usage and budget.

Usage rows are per (account, UTC day, purpose); the budget (``llm_daily_request_budget`` /
``llm_daily_token_budget``) applies to the sum over purposes. It is a soft limit: requests already
in flight when it is reached still finish, so it can be exceeded by at most the concurrency limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.tables import llm_cache, llm_usage

USAGE_COUNTERS = ("requests", "prompt_tokens", "completion_tokens", "failures", "cache_hits")


def utc_today() -> date:
    return datetime.now(UTC).date()


def _insert(conn: Connection, table: Any) -> Any:
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


@dataclass(frozen=True)
class CachedAnswer:
    result: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int


def cache_get_many(
    engine: Engine, account_id: str, purpose: str, keys: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], CachedAnswer]:
    """Cached answers for ``(content_hash, prompt_version, model)`` keys (missing keys are absent)."""
    wanted = list(dict.fromkeys(keys))
    found: dict[tuple[str, str, str], CachedAnswer] = {}
    cols = (llm_cache.c.content_hash, llm_cache.c.prompt_version, llm_cache.c.model)
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = conn.execute(
                select(*cols, llm_cache.c.result, llm_cache.c.prompt_tokens, llm_cache.c.completion_tokens).where(
                    llm_cache.c.account_id == account_id,
                    llm_cache.c.purpose == purpose,
                    tuple_(*cols).in_(chunk),
                )
            )
            for row in rows:
                found[(row[0], row[1], row[2])] = CachedAnswer(
                    dict(row.result), row.prompt_tokens, row.completion_tokens
                )
    return found


def cache_put_many(
    conn: Connection, account_id: str, purpose: str, entries: Mapping[tuple[str, str, str], CachedAnswer]
) -> None:
    """Store validated answers (an existing entry for the same key is kept)."""
    if not entries:
        return
    rows = [
        {
            "account_id": account_id,
            "purpose": purpose,
            "content_hash": key[0],
            "prompt_version": key[1],
            "model": key[2],
            "result": entry.result,
            "prompt_tokens": entry.prompt_tokens,
            "completion_tokens": entry.completion_tokens,
        }
        for key, entry in entries.items()
    ]
    conn.execute(_insert(conn, llm_cache).on_conflict_do_nothing(), rows)


def add_usage(conn: Connection, account_id: str, purpose: str, day: date | None = None, **counters: int) -> None:
    """Add ``counters`` (requests, prompt_tokens, completion_tokens, failures, cache_hits) to today's row."""
    values = {k: int(v) for k, v in counters.items() if k in USAGE_COUNTERS and v}
    unknown = set(counters) - set(USAGE_COUNTERS)
    if unknown:
        raise ValueError(f"unknown usage counters: {sorted(unknown)}")
    if not values:
        return
    day = day or utc_today()
    stmt = _insert(conn, llm_usage).values(account_id=account_id, day=day, purpose=purpose, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["account_id", "day", "purpose"],
        set_={**{k: getattr(llm_usage.c, k) + v for k, v in values.items()}, "updated_at": func.now()},
    )
    conn.execute(stmt)


@dataclass(frozen=True)
class DailyUsage:
    requests: int = 0
    tokens: int = 0


def usage_today(conn: Connection, account_id: str, day: date | None = None) -> DailyUsage:
    """Requests and tokens spent by ``account_id`` on ``day`` (UTC), over every purpose."""
    row = conn.execute(
        select(
            func.coalesce(func.sum(llm_usage.c.requests), 0),
            func.coalesce(func.sum(llm_usage.c.prompt_tokens + llm_usage.c.completion_tokens), 0),
        ).where(llm_usage.c.account_id == account_id, llm_usage.c.day == (day or utc_today()))
    ).one()
    return DailyUsage(int(row[0]), int(row[1]))


def usage_report(engine: Engine, account_id: str, start: date, end: date) -> list[dict[str, Any]]:
    """Per day and purpose usage of one tenant between ``start`` and ``end`` (inclusive)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(llm_usage)
            .where(llm_usage.c.account_id == account_id, llm_usage.c.day >= start, llm_usage.c.day <= end)
            .order_by(llm_usage.c.day, llm_usage.c.purpose)
        ).mappings()
        return [
            {"day": r["day"].isoformat(), "purpose": r["purpose"], **{k: int(r[k]) for k in USAGE_COUNTERS}}
            for r in rows
        ]


def last_model(conn: Connection, account_id: str) -> str | None:
    """The model of ``account_id``'s most recent validated LLM answer (any process, any purpose), or None.

    The API process is not the one calling the LLM (the routing worker, ``beazap llm analyze`` and
    Dagster are), so what the tenant's LLM really is comes from what they stored, not from this
    process's settings.
    """
    return conn.execute(
        select(llm_cache.c.model)
        .where(llm_cache.c.account_id == account_id)
        .order_by(llm_cache.c.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()


class Budget:
    """In-process view of one tenant's remaining daily budget, charged as requests complete."""

    def __init__(self, request_budget: int, token_budget: int, spent: DailyUsage) -> None:
        self.request_budget = request_budget
        self.token_budget = token_budget
        self.requests = spent.requests
        self.tokens = spent.tokens
        self.reserved = 0

    def try_reserve(self) -> bool:
        """Reserve one request if the budget allows it (call :meth:`settle` when it completes)."""
        if self.requests + self.reserved >= self.request_budget or self.tokens >= self.token_budget:
            return False
        self.reserved += 1
        return True

    def settle(self, requests: int, tokens: int) -> None:
        self.reserved = max(0, self.reserved - 1)
        self.requests += requests
        self.tokens += tokens

    @property
    def exhausted(self) -> bool:
        return self.requests >= self.request_budget or self.tokens >= self.token_budget
