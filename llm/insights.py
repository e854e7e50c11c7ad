"""``gold/conversation_insights``: topic, intent, sentiment, urgency, summary and resolution quality
for every closed conversation in silver (docs/metrics.md → Insights).

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
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pyarrow as pa
from sqlalchemy import Engine, select

from core.logging import get_logger
from core.settings import Settings, get_settings
from llm import RULES_MODEL
from llm.analysis import (
    AnalysisOutcome,
    ConversationInput,
    PreparedRequest,
    analyze_with_llm,
    analyze_with_rules,
    outcome_from_cache,
    prepare,
)
from llm.client import LLMClient, Usage
from llm.rules import RuleAnalyzer
from llm.store import Budget, CachedAnswer, add_usage, cache_get_many, cache_put_many, usage_today
from llm.transcript import TranscriptMessage
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
CHUNK_SIZE = 5000  # conversations held in memory at once
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
    analyzer = RuleAnalyzer(topics)
    stats: dict[str, Any] = defaultdict(int)
    budgets: dict[str, Budget] = {}
    now = datetime.now(UTC)
    batches: list[pa.Table] = []
    done = 0
    total, chunks = stream_closed_conversations(lake, tenants, zones, settings.default_timezone, CHUNK_SIZE)
    stats["conversations"] = total
    for conversations in chunks:
        rows: dict[str, dict[str, Any]] = {}
        prepared = {
            c.conversation_id: prepare(c, topics, settings.llm_transcript_token_budget, prompt_version)
            for c in conversations
        }

        def emit(
            conv: ConversationInput,
            outcome: AnalysisOutcome,
            rows: dict[str, dict[str, Any]] = rows,
            prepared: dict[str, PreparedRequest] = prepared,
        ) -> None:
            nonlocal done
            rows[conv.conversation_id] = _row(conv, prepared[conv.conversation_id], outcome, prompt_version, now)
            done += 1
            if progress is not None:
                progress(done, total)

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
            _analyze_llm(
                engine, settings, client, analyzer, llm_work, prepared, prompt_version, topics, emit, stats, budgets
            )
        chunk_rows = [rows[c.conversation_id] for c in conversations]
        stats["failed"] += sum(1 for r in chunk_rows if r["status"] == "failed")
        batches.append(pa.Table.from_pylist(chunk_rows, schema=INSIGHTS_SCHEMA))

    table = pa.concat_tables(batches) if batches else INSIGHTS_SCHEMA.empty_table()
    lake.write(INSIGHTS, table, mode="overwrite", schema_mode="overwrite")
    stats["rows"] = table.num_rows
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
    budgets: dict[str, Budget],
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
            if account_id not in budgets:
                spent = usage_today(conn, account_id)
                budgets[account_id] = Budget(settings.llm_daily_request_budget, settings.llm_daily_token_budget, spent)
        _call_all(
            engine, client, analyzer, account_id, to_call, prepared, keys, topics, budgets[account_id], emit, stats
        )


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
    pending_hits = 0
    window = max(1, client.max_concurrency)

    def flush() -> None:
        nonlocal pending_usage, pending_failures, pending_hits
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
                cache_hits=pending_hits,
            )
        pending_cache.clear()
        pending_usage, pending_failures, pending_hits = Usage(), 0, 0

    # Identical transcripts (same content hash) in this batch are sent once and share the answer.
    groups: dict[tuple[str, str, str], list[ConversationInput]] = {}
    for conv in convs:
        groups.setdefault(keys[conv.conversation_id], []).append(conv)
    todo: Iterator[list[ConversationInput]] = iter(groups.values())
    done_since_flush = 0
    with ThreadPoolExecutor(max_workers=window, thread_name_prefix="llm") as pool:
        in_flight: dict[Future[AnalysisOutcome], list[ConversationInput]] = {}
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < window:
                group = next(todo, None)
                if group is None:
                    exhausted = True
                    break
                if not budget.try_reserve():
                    for conv in group:
                        stats["budget_exhausted"] += 1
                        stats["rules"] += 1
                        emit(conv, analyze_with_rules(analyzer, conv))
                    continue
                future = pool.submit(analyze_with_llm, client, prepared[group[0].conversation_id], topics)
                in_flight[future] = group
            if not in_flight:
                break
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                group = in_flight.pop(future)
                outcome = future.result()
                budget.settle(outcome.usage.requests, outcome.usage.total_tokens)
                pending_usage.requests += outcome.usage.requests
                pending_usage.prompt_tokens += outcome.usage.prompt_tokens
                pending_usage.completion_tokens += outcome.usage.completion_tokens
                pending_hits += len(group) - 1
                stats["llm_requests"] += outcome.usage.requests
                stats["prompt_tokens"] += outcome.usage.prompt_tokens
                stats["completion_tokens"] += outcome.usage.completion_tokens
                if outcome.status == "ok" and outcome.analysis is not None:
                    stats["llm_ok"] += 1
                    stats["cache_hits"] += len(group) - 1
                    pending_cache[keys[group[0].conversation_id]] = CachedAnswer(
                        outcome.analysis.model_dump(), outcome.usage.prompt_tokens, outcome.usage.completion_tokens
                    )
                else:
                    stats["llm_failed"] += 1
                    pending_failures += 1
                emit(group[0], outcome)
                for twin in group[1:]:
                    emit(twin, replace(outcome, usage=Usage(), cached=outcome.status == "ok"))
                done_since_flush += len(group)
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
    """instance → account id and instance → time zone (the instance configuration), from the ops store
    (empty without one)."""
    if engine is None:
        return {}, {}
    from storage.instances import load_configs
    from storage.tables import instances

    with engine.connect() as conn:
        rows = conn.execute(select(instances.c.id, instances.c.account_id)).all()
    return {r.id: r.account_id for r in rows}, {i: c.timezone for i, c in load_configs(engine).items()}


def _zone(name: str | None, default: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


CLOSED = "status in ('resolved', 'expired', 'abandoned')"


def stream_closed_conversations(
    lake: Lake, tenants: dict[str, str], zones: dict[str, str], default_timezone: str, chunk_size: int
) -> tuple[int, Iterator[list[ConversationInput]]]:
    """How many closed conversations silver has, and an iterator of chunks of them with their messages.

    Messages are streamed from DuckDB in conversation order and merged with the conversations, so
    memory stays bounded by ``chunk_size`` conversations whatever the size of silver.
    """
    if not lake.exists(CONVERSATIONS):
        return 0, iter(())
    con = duckdb.connect()
    con.register("conversations", lake.dataset(CONVERSATIONS))
    meta = con.sql(
        f"""
        select conversation_id, instance_id, status, opened_at, closed_at, team_id, assignee_id
        from conversations where {CLOSED} order by conversation_id
        """
    ).fetchall()
    return len(meta), _chunks(con, lake, meta, tenants, zones, default_timezone, chunk_size)


def _message_stream(con: duckdb.DuckDBPyConnection, lake: Lake) -> Iterator[tuple[str, TranscriptMessage]]:
    if not lake.exists(MESSAGES):
        return
    con.register("messages", lake.dataset(MESSAGES))
    reader = con.sql(
        f"""
        select m.conversation_id, m.direction, m.kind, m.text, coalesce(m.automated, false) as automated
        from messages m
        where m.conversation_id in (select conversation_id from conversations where {CLOSED})
          and m.kind is distinct from 'reaction'
        order by m.conversation_id, m.event_at, m.message_id
        """
    ).to_arrow_reader(50_000)
    for batch in reader:
        cols = [batch.column(i).to_pylist() for i in range(5)]
        for conversation_id, direction, kind, text, automated in zip(*cols, strict=True):
            yield conversation_id, TranscriptMessage(direction, kind or "other", text, bool(automated))


def _chunks(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    meta: list[tuple[Any, ...]],
    tenants: dict[str, str],
    zones: dict[str, str],
    default_timezone: str,
    chunk_size: int,
) -> Iterator[list[ConversationInput]]:
    zone_cache: dict[str, ZoneInfo] = {}
    try:
        stream = _message_stream(con, lake)
        pending = next(stream, None)
        chunk: list[ConversationInput] = []
        for conversation_id, instance_id, status, opened_at, closed_at, team_id, assignee_id in meta:
            messages: list[TranscriptMessage] = []
            # Both sides are ordered by conversation_id and messages only belong to closed ones.
            while pending is not None and pending[0] <= conversation_id:
                if pending[0] == conversation_id:
                    messages.append(pending[1])
                pending = next(stream, None)
            zone = zone_cache.get(instance_id)
            if zone is None:
                zone = zone_cache[instance_id] = _zone(zones.get(instance_id), default_timezone)
            chunk.append(
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
                    messages=messages,
                )
            )
            if len(chunk) >= chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
    finally:
        con.close()
