"""``gold/conversation_insights``: topic, intent, sentiment, urgency, summary and resolution quality
for every closed conversation in silver (METRICS.md → Insights).

With an LLM configured (``BEAZAP_LLM_BASE_URL``) each conversation's redacted transcript is sent
once per (content, prompt version, model): answers are cached in the ops store, unchanged
conversations are never sent again, requests run ``llm_max_concurrency`` at a time, and each tenant
is held to its daily budget. Invalid answers are retried then written as ``status = 'failed'`` (no
guessed values). Without an LLM — or once a tenant's budget is spent — the deterministic rule-based
analyser fills the row and says so in ``model`` (``rules-v1``).

The table is rebuilt whole on every run (conversations erased from silver disappear from it).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pyarrow as pa
from sqlalchemy import Engine, select

from beazap.logging import get_logger
from beazap.settings import Settings, get_settings
from ops.llm import RULES_MODEL
from ops.llm.analysis import (
    AnalysisOutcome,
    ConversationInput,
    PreparedRequest,
    analyze_with_llm,
    analyze_with_rules,
    outcome_from_cache,
    prepare,
)
from ops.llm.client import LLMClient, Usage
from ops.llm.rules import RuleAnalyzer
from ops.llm.store import Budget, CachedAnswer, add_usage, cache_get_many, cache_put_many, usage_today
from ops.llm.transcript import TranscriptMessage
from silver.schema import CONVERSATIONS, MESSAGES
from storage.lake import Lake

log = get_logger(__name__)

INSIGHTS = "gold/conversation_insights"
PURPOSE = "analysis"
TS = pa.timestamp("us", tz="UTC")
INSIGHTS_SCHEMA = pa.schema(
    [
        ("conversation_id", pa.string()),
        ("instance_id", pa.string()),
        ("opened_at", TS),
        ("closed_at", TS),
        ("opened_date", pa.date32()),  # local day (instance time zone) the conversation opened
        ("conversation_status", pa.string()),  # resolved | expired
        ("team_id", pa.string()),
        ("assignee_id", pa.string()),
        ("topic", pa.string()),
        ("intent", pa.string()),
        ("sentiment", pa.float64()),  # -1..1
        ("urgency", pa.string()),  # low | medium | high
        ("summary", pa.string()),
        ("resolution_quality", pa.string()),  # resolved | partially_resolved | unresolved | unknown
        ("model", pa.string()),  # LLM model name or rules-v1
        ("prompt_version", pa.string()),
        ("content_hash", pa.string()),  # sha256 of the redacted transcript + taxonomy + prompt version
        ("status", pa.string()),  # ok | failed
        ("error", pa.string()),  # why it failed (no content)
        ("truncated", pa.bool_()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("analyzed_at", TS),
    ]
)

FLUSH_EVERY = 200  # completed LLM answers between cache/usage commits
Progress = Callable[[int, int], None]


def build_insights(
    lake: Lake,
    *,
    engine: Engine | None = None,
    settings: Settings | None = None,
    client: LLMClient | None = None,
    progress: Progress | None = None,
) -> dict[str, dict[str, Any]]:
    """Analyse every closed conversation in silver and overwrite ``gold/conversation_insights``.

    ``engine`` is the ops store (instance → tenant and time zone, cache, usage); it is required
    when an LLM is configured and defaults to the configured database then. ``client`` overrides
    the LLM client built from settings. Returns ``{"conversation_insights": stats}``.
    """
    settings = settings or get_settings()
    started = time.perf_counter()
    own_client = client is None
    client = client or LLMClient.from_settings(settings)
    if client is not None and engine is None:
        from storage.db import get_engine

        engine = get_engine(settings)
    try:
        stats = _run(lake, engine, settings, client, progress)
    finally:
        if own_client and client is not None:
            client.close()
    stats["seconds"] = round(time.perf_counter() - started, 3)
    log.info("insights built", **{k: v for k, v in stats.items() if isinstance(v, int | float)})
    return {"conversation_insights": stats}


def _run(
    lake: Lake, engine: Engine | None, settings: Settings, client: LLMClient | None, progress: Progress | None
) -> dict[str, Any]:
    topics = list(settings.llm_topics)
    prompt_version = settings.llm_prompt_version
    tenants, zones = _instance_info(engine)
    conversations = load_closed_conversations(lake, tenants, zones, settings.default_timezone)
    analyzer = RuleAnalyzer(topics)
    stats: dict[str, Any] = defaultdict(int)
    stats["conversations"] = len(conversations)
    rows: dict[str, dict[str, Any]] = {}
    now = datetime.now(UTC)
    prepared = {
        c.conversation_id: prepare(c, topics, settings.llm_transcript_token_budget, prompt_version)
        for c in conversations
    }

    def emit(conv: ConversationInput, outcome: AnalysisOutcome) -> None:
        rows[conv.conversation_id] = _row(conv, prepared[conv.conversation_id], outcome, prompt_version, now)
        if progress is not None:
            progress(len(rows), len(conversations))

    llm_work: list[ConversationInput] = []
    for conv in conversations:
        if client is None or conv.account_id is None:
            stats["rules"] += 1
            if client is not None:
                stats["no_tenant"] += 1  # instance not registered in the ops store: no budget to charge
            emit(conv, analyze_with_rules(analyzer, conv))
        else:
            llm_work.append(conv)

    if client is not None and engine is not None and llm_work:
        _analyze_llm(engine, settings, client, analyzer, llm_work, prepared, prompt_version, topics, emit, stats)

    table = pa.Table.from_pylist([rows[c.conversation_id] for c in conversations], schema=INSIGHTS_SCHEMA)
    lake.write(INSIGHTS, table, mode="overwrite", schema_mode="overwrite")
    stats["rows"] = table.num_rows
    stats["failed"] = sum(1 for r in rows.values() if r["status"] == "failed")
    stats["version"] = lake.version(INSIGHTS)
    return dict(stats)


def _analyze_llm(
    engine: Engine,
    settings: Settings,
    client: LLMClient,
    analyzer: RuleAnalyzer,
    work: list[ConversationInput],
    prepared: dict[str, PreparedRequest],
    prompt_version: str,
    topics: list[str],
    emit: Callable[[ConversationInput, AnalysisOutcome], None],
    stats: dict[str, Any],
) -> None:
    by_account: dict[str, list[ConversationInput]] = defaultdict(list)
    for conv in work:
        by_account[conv.account_id or ""].append(conv)
    for account_id, convs in by_account.items():
        keys = {
            c.conversation_id: (prepared[c.conversation_id].content_hash, prompt_version, client.model) for c in convs
        }
        cached = cache_get_many(engine, account_id, PURPOSE, keys.values())
        to_call: list[ConversationInput] = []
        for conv in convs:
            hit = cached.get(keys[conv.conversation_id])
            if hit is None:
                to_call.append(conv)
                continue
            stats["cache_hits"] += 1
            emit(conv, outcome_from_cache(hit.result, client.model, Usage(0, hit.prompt_tokens, hit.completion_tokens)))
        with engine.begin() as conn:
            add_usage(conn, account_id, PURPOSE, cache_hits=len(convs) - len(to_call))
            spent = usage_today(conn, account_id)
        budget = Budget(settings.llm_daily_request_budget, settings.llm_daily_token_budget, spent)
        _call_all(engine, client, analyzer, account_id, to_call, prepared, keys, topics, budget, emit, stats)


def _call_all(
    engine: Engine,
    client: LLMClient,
    analyzer: RuleAnalyzer,
    account_id: str,
    convs: list[ConversationInput],
    prepared: dict[str, PreparedRequest],
    keys: dict[str, tuple[str, str, str]],
    topics: list[str],
    budget: Budget,
    emit: Callable[[ConversationInput, AnalysisOutcome], None],
    stats: dict[str, Any],
) -> None:
    """Sliding window of ``max_concurrency`` requests; cache and usage committed every ``FLUSH_EVERY``."""
    pending_cache: dict[tuple[str, str, str], CachedAnswer] = {}
    pending_usage: Usage = Usage()
    pending_failures = 0
    window = max(1, client.max_concurrency)

    def flush() -> None:
        nonlocal pending_usage, pending_failures
        with engine.begin() as conn:
            cache_put_many(conn, account_id, PURPOSE, pending_cache)
            add_usage(
                conn,
                account_id,
                PURPOSE,
                requests=pending_usage.requests,
                prompt_tokens=pending_usage.prompt_tokens,
                completion_tokens=pending_usage.completion_tokens,
                failures=pending_failures,
            )
        pending_cache.clear()
        pending_usage, pending_failures = Usage(), 0

    todo: Iterator[ConversationInput] = iter(convs)
    done_since_flush = 0
    with ThreadPoolExecutor(max_workers=window, thread_name_prefix="llm") as pool:
        in_flight: dict[Future[AnalysisOutcome], ConversationInput] = {}
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < window:
                conv = next(todo, None)
                if conv is None:
                    exhausted = True
                    break
                if not budget.try_reserve():
                    stats["budget_exhausted"] += 1
                    stats["rules"] += 1
                    emit(conv, analyze_with_rules(analyzer, conv))
                    continue
                future = pool.submit(analyze_with_llm, client, prepared[conv.conversation_id], topics)
                in_flight[future] = conv
            if not in_flight:
                break
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                conv = in_flight.pop(future)
                outcome = future.result()
                budget.settle(outcome.usage.requests, outcome.usage.total_tokens)
                pending_usage.requests += outcome.usage.requests
                pending_usage.prompt_tokens += outcome.usage.prompt_tokens
                pending_usage.completion_tokens += outcome.usage.completion_tokens
                stats["llm_requests"] += outcome.usage.requests
                stats["prompt_tokens"] += outcome.usage.prompt_tokens
                stats["completion_tokens"] += outcome.usage.completion_tokens
                if outcome.status == "ok" and outcome.analysis is not None:
                    stats["llm_ok"] += 1
                    pending_cache[keys[conv.conversation_id]] = CachedAnswer(
                        outcome.analysis.model_dump(), outcome.usage.prompt_tokens, outcome.usage.completion_tokens
                    )
                else:
                    stats["llm_failed"] += 1
                    pending_failures += 1
                emit(conv, outcome)
                done_since_flush += 1
            if done_since_flush >= FLUSH_EVERY:
                flush()
                done_since_flush = 0
    flush()


def _row(
    conv: ConversationInput, request: PreparedRequest, outcome: AnalysisOutcome, prompt_version: str, now: datetime
) -> dict[str, Any]:
    a = outcome.analysis
    return {
        "conversation_id": conv.conversation_id,
        "instance_id": conv.instance_id,
        "opened_at": conv.opened_at,
        "closed_at": conv.closed_at,
        "opened_date": conv.opened_date,
        "conversation_status": conv.status,
        "team_id": conv.team_id,
        "assignee_id": conv.assignee_id,
        "topic": a.topic if a else None,
        "intent": a.intent if a else None,
        "sentiment": a.sentiment if a else None,
        "urgency": a.urgency if a else None,
        "summary": a.summary if a else None,
        "resolution_quality": a.resolution_quality if a else None,
        "model": outcome.model,
        "prompt_version": prompt_version if outcome.model != RULES_MODEL else RULES_MODEL,
        "content_hash": request.content_hash,
        "status": outcome.status,
        "error": outcome.error,
        "truncated": request.truncated,
        "prompt_tokens": outcome.usage.prompt_tokens,
        "completion_tokens": outcome.usage.completion_tokens,
        "analyzed_at": now,
    }


def _instance_info(engine: Engine | None) -> tuple[dict[str, str], dict[str, str]]:
    """instance → account id and instance → time zone, from the ops store (empty without one)."""
    if engine is None:
        return {}, {}
    from storage.tables import instances

    with engine.connect() as conn:
        rows = conn.execute(select(instances.c.id, instances.c.account_id, instances.c.timezone)).all()
    return {r.id: r.account_id for r in rows}, {r.id: r.timezone for r in rows}


def _zone(name: str | None, default: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


def load_closed_conversations(
    lake: Lake, tenants: dict[str, str], zones: dict[str, str], default_timezone: str
) -> list[ConversationInput]:
    """Closed (resolved or expired) conversations of silver with their messages, in time order."""
    if not lake.exists(CONVERSATIONS):
        return []
    con = duckdb.connect()
    try:
        con.register("conversations", lake.open(CONVERSATIONS).to_pyarrow_dataset())
        convs = con.sql(
            """
            select conversation_id, instance_id, status, opened_at, closed_at, team_id, assignee_id
            from conversations where status in ('resolved', 'expired')
            order by instance_id, opened_at, conversation_id
            """
        ).fetchall()
        messages: dict[str, list[TranscriptMessage]] = defaultdict(list)
        if lake.exists(MESSAGES) and convs:
            con.register("messages", lake.open(MESSAGES).to_pyarrow_dataset())
            rows = con.sql(
                """
                select m.conversation_id, m.direction, m.kind, m.text, coalesce(m.automated, false)
                from messages m
                join (select conversation_id from conversations where status in ('resolved', 'expired')) c
                  using (conversation_id)
                where m.kind is distinct from 'reaction'
                order by m.conversation_id, m.event_at, m.message_id
                """
            ).fetchall()
            for conversation_id, direction, kind, text, automated in rows:
                messages[conversation_id].append(TranscriptMessage(direction, kind or "other", text, bool(automated)))
    finally:
        con.close()
    zone_cache: dict[str, ZoneInfo] = {}
    out: list[ConversationInput] = []
    for conversation_id, instance_id, status, opened_at, closed_at, team_id, assignee_id in convs:
        zone = zone_cache.get(instance_id)
        if zone is None:
            zone = zone_cache[instance_id] = _zone(zones.get(instance_id), default_timezone)
        out.append(
            ConversationInput(
                conversation_id=conversation_id,
                instance_id=instance_id,
                account_id=tenants.get(instance_id),
                status=status,
                opened_at=opened_at,
                closed_at=closed_at,
                opened_date=opened_at.astimezone(zone).date(),
                team_id=team_id,
                assignee_id=assignee_id,
                messages=messages.get(conversation_id, []),
            )
        )
    return out
