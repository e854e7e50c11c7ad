"""API routes: conversation insights (topics, sentiment), one conversation's insights, LLM usage.

Reads ``gold/conversation_insights`` (written by :func:`llm.insights.build_insights`) from an
in-memory DuckDB copy that is reloaded when the table's Delta version changes (checked at most
every ``gold_refresh_seconds``). Days are the conversation's **opening** day in the instance's
time zone, like every conversation-level metric. Only ``status = 'ok'`` rows count in the figures;
failed analyses are reported as a count.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import duckdb
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Scope
from api.routes.metrics import ERRORS, MAX_DATE, MIN_DATE, FiltersDep
from core.settings import Settings, get_settings
from gold.serving.queries import Filters
from llm.insights import INSIGHTS, INSIGHTS_SCHEMA
from storage.lake import Lake

router = APIRouter(tags=["insights"])

POSITIVE, NEGATIVE = 0.2, -0.2  # sentiment bands: > 0.2 positive, < -0.2 negative, else neutral


# --- the in-memory copy ---------------------------------------------------------------------------------------------
class InsightsReader:
    """Thread-safe, version-aware in-memory copy of ``gold/conversation_insights``."""

    def __init__(self, lake: Lake, refresh_seconds: float = 2.0) -> None:
        self.lake = lake
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._db: duckdb.DuckDBPyConnection | None = None
        self._version: int | None = -1
        self._checked = 0.0

    def cursor(self) -> duckdb.DuckDBPyConnection:
        now = time.monotonic()
        with self._lock:
            if self._db is None or now - self._checked >= self.refresh_seconds:
                self._checked = now
                dt = self.lake.open_or_none(INSIGHTS)
                version = None if dt is None else dt.version()
                if self._db is None or version != self._version:
                    data = INSIGHTS_SCHEMA.empty_table() if dt is None else self.lake.dataset(INSIGHTS, dt).to_table()
                    db = duckdb.connect()
                    db.register("_src", data)
                    db.execute("create table insights as select * from _src")
                    db.unregister("_src")
                    self._db, self._version = db, version
            return self._db.cursor()


def _settings(request: Request) -> Settings:
    return getattr(request.app.state, "settings", None) or get_settings()


def get_insights_reader(request: Request) -> InsightsReader:
    reader = getattr(request.app.state, "insights_reader", None)
    if reader is None:
        settings = _settings(request)
        reader = InsightsReader(Lake.from_settings(settings), settings.gold_refresh_seconds)
        request.app.state.insights_reader = reader
    return reader


ReaderDep = Annotated[InsightsReader, Depends(get_insights_reader)]


def _where(f: Filters) -> tuple[str, list[Any]]:
    """Parameterized WHERE over the filters (instances, local opening day range, teams, attendants)."""
    if not f.instance_ids:
        return "false", []
    params: list[Any] = [*f.instance_ids, f.start, f.end]
    clause = f"instance_id in ({', '.join('?' for _ in f.instance_ids)}) and opened_date between ? and ?"
    if f.team_ids:
        clause += f" and team_id in ({', '.join('?' for _ in f.team_ids)})"
        params += f.team_ids
    if f.attendant_ids:
        clause += f" and assignee_id in ({', '.join('?' for _ in f.attendant_ids)})"
        params += f.attendant_ids
    return clause, params


# --- models ---------------------------------------------------------------------------------------------------------
class Period(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from", serialization_alias="from", examples=["2026-03-01"])
    to: date = Field(examples=["2026-03-31"])


class TopicRow(BaseModel):
    topic: str = Field(examples=["billing"])
    conversations: int = Field(examples=[120])
    share: float = Field(description="Of analysed conversations in the period (0..1).", examples=[0.25])
    avg_sentiment: float | None = Field(examples=[-0.12])
    negative: int = Field(description="Conversations with sentiment < -0.2.", examples=[30])
    high_urgency: int = Field(examples=[12])
    resolved: int = Field(description="resolution_quality = resolved.", examples=[100])


class TopicsResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    period: Period
    instances: list[str]
    analysed: int = Field(description="Closed conversations with insights (status ok).", examples=[480])
    failed: int = Field(description="Analyses that failed (retried next run).", examples=[2])
    models: dict[str, int] = Field(description="Analysed conversations per model (rules-v1 = rule-based).")
    topics: list[TopicRow]


class SentimentBucket(BaseModel):
    conversations: int = 0
    avg_sentiment: float | None = None
    positive: int = 0
    neutral: int = 0
    negative: int = 0


class SentimentDay(SentimentBucket):
    day: date


class SentimentResponse(BaseModel):
    period: Period
    instances: list[str]
    overall: SentimentBucket
    days: list[SentimentDay]
    by_topic: dict[str, SentimentBucket]


class ConversationInsights(BaseModel):
    conversation_id: str
    instance_id: str
    status: str = Field(description="ok | failed")
    topic: str | None
    intent: str | None
    sentiment: float | None
    urgency: str | None
    summary: str | None
    resolution_quality: str | None
    model: str
    prompt_version: str
    analyzed_at: datetime
    opened_at: datetime
    closed_at: datetime | None
    error: str | None = None


class UsageDay(BaseModel):
    day: date
    purpose: str = Field(description="analysis | route")
    requests: int
    prompt_tokens: int
    completion_tokens: int
    failures: int
    cache_hits: int


class UsageToday(BaseModel):
    requests: int
    tokens: int
    remaining_requests: int
    remaining_tokens: int


class UsageResponse(BaseModel):
    account_id: str
    period: Period
    llm_configured: bool = Field(
        description="An LLM is configured for this API process, or the tenant's LLM answers/requests show one in use "
        "(the routing worker and batch analysis run in their own processes)."
    )
    model: str | None = Field(description="This process's model, else the model of the tenant's latest LLM answer.")
    budget: dict[str, int] = Field(description="Daily budget per tenant: requests and tokens (UTC day).")
    today: UsageToday
    totals: dict[str, int]
    days: list[UsageDay]


def _bucket(row: tuple[Any, ...]) -> dict[str, Any]:
    n, avg, pos, neu, neg = row
    return {
        "conversations": int(n or 0),
        "avg_sentiment": None if avg is None else round(float(avg), 4),
        "positive": int(pos or 0),
        "neutral": int(neu or 0),
        "negative": int(neg or 0),
    }


SENTIMENT_AGG = f"""count(*), avg(sentiment),
    count(*) filter (where sentiment > {POSITIVE}),
    count(*) filter (where sentiment between {NEGATIVE} and {POSITIVE}),
    count(*) filter (where sentiment < {NEGATIVE})"""


# --- routes ---------------------------------------------------------------------------------------------------------
@router.get("/v1/metrics/topics", response_model=TopicsResponse, responses=ERRORS, summary="Conversation topics")
def topics(f: FiltersDep, reader: ReaderDep) -> dict[str, Any]:
    """Closed conversations per topic (insights), with sentiment, urgency and resolution per topic."""
    where, params = _where(f)
    cur = reader.cursor()
    failed = cur.execute(f"select count(*) from insights where {where} and status = 'failed'", params).fetchone()
    models = cur.execute(
        f"select model, count(*) from insights where {where} and status = 'ok' group by model order by model", params
    ).fetchall()
    rows = cur.execute(
        f"""
        select topic, count(*), avg(sentiment), count(*) filter (where sentiment < {NEGATIVE}),
               count(*) filter (where urgency = 'high'), count(*) filter (where resolution_quality = 'resolved')
        from insights where {where} and status = 'ok'
        group by topic order by count(*) desc, topic
        """,
        params,
    ).fetchall()
    analysed = sum(int(r[1]) for r in rows)
    return {
        "period": {"from": f.start, "to": f.end},
        "instances": f.instance_ids,
        "analysed": analysed,
        "failed": int(failed[0]) if failed else 0,
        "models": {m: int(n) for m, n in models},
        "topics": [
            {
                "topic": t,
                "conversations": int(n),
                "share": round(int(n) / analysed, 4) if analysed else 0.0,
                "avg_sentiment": None if avg is None else round(float(avg), 4),
                "negative": int(neg),
                "high_urgency": int(high),
                "resolved": int(res),
            }
            for t, n, avg, neg, high, res in rows
        ],
    }


@router.get("/v1/metrics/sentiment", response_model=SentimentResponse, responses=ERRORS, summary="Customer sentiment")
def sentiment(f: FiltersDep, reader: ReaderDep) -> dict[str, Any]:
    """Customer sentiment (−1..1) of closed conversations: overall, per opening day and per topic."""
    where, params = _where(f)
    cur = reader.cursor()
    base = f"from insights where {where} and status = 'ok'"
    overall = cur.execute(f"select {SENTIMENT_AGG} {base}", params).fetchone() or (0, None, 0, 0, 0)
    days = cur.execute(f"select opened_date, {SENTIMENT_AGG} {base} group by 1 order by 1", params).fetchall()
    topics_ = cur.execute(f"select topic, {SENTIMENT_AGG} {base} group by 1 order by 1", params).fetchall()
    return {
        "period": {"from": f.start, "to": f.end},
        "instances": f.instance_ids,
        "overall": _bucket(overall),
        "days": [{"day": r[0], **_bucket(r[1:])} for r in days],
        "by_topic": {r[0]: _bucket(r[1:]) for r in topics_},
    }


@router.get(
    "/v1/conversations/{conversation_id}/insights",
    response_model=ConversationInsights,
    responses=ERRORS,
    summary="Insights of one conversation",
)
def conversation_insights(
    scope: Scope, reader: ReaderDep, conversation_id: Annotated[str, Path(max_length=100)]
) -> dict[str, Any]:
    """Topic, intent, sentiment, urgency, summary and resolution quality of one closed conversation."""
    if not scope.instance_ids:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no insights for this conversation")
    ids = sorted(scope.instance_ids)
    cur = reader.cursor()
    cur.execute(
        f"select * from insights where conversation_id = ? and instance_id in ({', '.join('?' for _ in ids)})",
        [conversation_id, *ids],
    )
    columns = [d[0] for d in cur.description or []]
    row = [dict(zip(columns, values, strict=True)) for values in cur.fetchall()]
    if not row:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no insights for this conversation")
    return row[0]


@router.get("/v1/llm/usage", response_model=UsageResponse, responses=ERRORS, summary="LLM usage of your tenant")
def llm_usage(
    request: Request,
    scope: Scope,
    from_: Annotated[date | None, Query(alias="from", description="First UTC day. Default: to − 29 days.")] = None,
    to: Annotated[date | None, Query(description="Last UTC day, inclusive. Default: today.")] = None,
) -> dict[str, Any]:
    """Requests, tokens, failures and cache hits per day and purpose, with today's remaining budget."""
    from llm.store import last_model, usage_report, usage_today
    from storage.db import get_engine

    for given in (from_, to):
        if given is not None and not (MIN_DATE <= given <= MAX_DATE):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"dates must be between {MIN_DATE} and {MAX_DATE}"
            )
    end = to or datetime.now(UTC).date()
    start = from_ or end - timedelta(days=29)
    if start > end or (end - start).days > 400:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid range (from <= to, at most 400 days)")
    settings = _settings(request)
    engine = getattr(request.app.state, "engine", None) or get_engine(settings)
    days = usage_report(engine, scope.account_id, start, end)
    with engine.connect() as conn:
        spent = usage_today(conn, scope.account_id)
        used_model = last_model(conn, scope.account_id)
    totals = {k: sum(d[k] for d in days) for k in ("requests", "prompt_tokens", "completion_tokens", "failures")}
    totals["cache_hits"] = sum(d["cache_hits"] for d in days)
    return {
        "account_id": scope.account_id,
        "period": {"from": start, "to": end},
        # The worker and batch runs call the LLM from their own processes (their own environment):
        # this process's settings alone would say "not configured" while they use it.
        "llm_configured": bool(settings.llm_base_url) or used_model is not None or totals["requests"] > 0,
        "model": settings.llm_model if settings.llm_base_url else used_model,
        "budget": {"requests": settings.llm_daily_request_budget, "tokens": settings.llm_daily_token_budget},
        "today": {
            "requests": spent.requests,
            "tokens": spent.tokens,
            "remaining_requests": max(0, settings.llm_daily_request_budget - spent.requests),
            "remaining_tokens": max(0, settings.llm_daily_token_budget - spent.tokens),
        },
        "totals": totals,
        "days": days,
    }
