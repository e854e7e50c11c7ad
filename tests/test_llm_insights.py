"""gold/conversation_insights: rules without an LLM; with the fake LLM server: redaction, retries,
failures marked (never guessed), cache (0 duplicate calls), prompt version, per-tenant budget."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow.compute as pc
import pytest
import sqlalchemy as sa

from core.settings import Settings
from llm.client import LLMClient
from llm.insights import INSIGHTS, build_insights
from storage.lake import Lake
from storage.tables import llm_usage
from tests.fakes.llm import FakeLLM
from tests.llm_data import PLANTED, conversation, sample_conversations, write_silver

INSTANCE = "loja-a"


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        server.forbid(*PLANTED.values())
        yield server


@pytest.fixture
def tenant(engine: sa.Engine) -> sa.Engine:
    from storage.instances import add_instance

    add_instance(engine, INSTANCE, "acme")
    return engine


def _client(fake: FakeLLM, **kw: Any) -> LLMClient:
    options = {"model": "fake-model", "timeout": 2.0, "max_retries": 3, "max_concurrency": 4, "backoff_initial": 0.01}
    options.update(kw)
    return LLMClient(fake.base_url, **options)


def _rows(lake: Lake) -> dict[str, dict[str, Any]]:
    return {r["conversation_id"]: r for r in lake.open(INSIGHTS).to_pyarrow_table().to_pylist()}


def _with(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)


def test_rules_without_llm_fill_closed_conversations_deterministically(lake: Lake, settings: Settings) -> None:
    convs, msgs = sample_conversations(INSTANCE, 6)
    open_conv, open_msgs = conversation(INSTANCE, 99, [("inbound", "ainda aberta")], status="open")
    write_silver(lake, [*convs, open_conv], [*msgs, *open_msgs])

    stats = build_insights(lake, settings=settings)["conversation_insights"]
    rows = _rows(lake)
    assert stats["rows"] == 6 and set(rows) == {c["conversation_id"] for c in convs}
    assert {r["model"] for r in rows.values()} == {"rules-v1"}
    assert all(r["status"] == "ok" and -1 <= r["sentiment"] <= 1 for r in rows.values())
    assert all(r["topic"] in settings.llm_topics for r in rows.values())
    by_n = {int(c["opening_message_id"][1:].split("-")[0]): rows[c["conversation_id"]] for c in convs}
    assert by_n[0]["topic"] == "billing" and by_n[1]["topic"] == "delivery"
    assert by_n[2]["topic"] == "technical_support" and by_n[3]["topic"] == "cancellation"
    assert by_n[4]["sentiment"] > 0 and by_n[1]["sentiment"] <= 0
    assert all(PLANTED["email"] not in r["summary"] and "98765" not in r["summary"] for r in rows.values())
    first = {k: (r["topic"], r["sentiment"], r["summary"]) for k, r in rows.items()}
    build_insights(lake, settings=settings)
    assert {k: (r["topic"], r["sentiment"], r["summary"]) for k, r in _rows(lake).items()} == first


def test_llm_analysis_is_redacted_cached_and_never_repeated(
    lake: Lake, settings: Settings, tenant: sa.Engine, fake: FakeLLM
) -> None:
    convs, msgs = sample_conversations(INSTANCE, 12)
    write_silver(lake, convs, msgs)
    client = _client(fake)

    stats = build_insights(lake, engine=tenant, settings=settings, client=client)["conversation_insights"]
    assert fake.violations == []
    assert fake.calls == 12 and stats["llm_ok"] == 12 and stats["failed"] == 0
    rows = _rows(lake)
    assert {r["model"] for r in rows.values()} == {"fake-model"}
    assert {r["prompt_version"] for r in rows.values()} == {settings.llm_prompt_version}
    sent = "\n".join(m["content"] for req in fake.requests for m in req["messages"])
    assert "[CPF]" in sent and "[PHONE]" in sent and "[EMAIL]" in sent and "[CNPJ]" in sent

    # Second run: everything from the cache, zero calls.
    stats = build_insights(lake, engine=tenant, settings=settings, client=client)["conversation_insights"]
    assert fake.calls == 12 and stats["cache_hits"] == 12 and stats.get("llm_requests", 0) == 0
    assert {k: r["topic"] for k, r in _rows(lake).items()} == {k: r["topic"] for k, r in rows.items()}

    # One conversation changes: exactly one new call.
    changed, changed_msgs = conversation(INSTANCE, 0, [("inbound", "boleto duplicado"), ("outbound", "corrigido")])
    convs[0] = changed
    msgs = [m for m in msgs if m["conversation_id"] != changed["conversation_id"]] + changed_msgs
    write_silver(lake, convs, msgs)
    build_insights(lake, engine=tenant, settings=settings, client=client)
    assert fake.calls == 13

    # A new prompt version re-analyses everything.
    build_insights(lake, engine=tenant, settings=_with(settings, llm_prompt_version="v2"), client=client)
    assert fake.calls == 25
    with tenant.connect() as conn:
        used = conn.execute(sa.select(sa.func.sum(llm_usage.c.requests), sa.func.sum(llm_usage.c.cache_hits))).one()
    assert used[0] == 25 and used[1] == 12 + 11  # run 2: all hits; run 3: the changed one missed


def test_retries_recover_and_exhausted_answers_are_marked_failed(
    lake: Lake, settings: Settings, tenant: sa.Engine, fake: FakeLLM
) -> None:
    convs, msgs = sample_conversations(INSTANCE, 1)
    write_silver(lake, convs, msgs)
    client = _client(fake, max_concurrency=1)

    fake.push("500", "429", "malformed")  # three bad attempts: the item fails, nothing guessed
    stats = build_insights(lake, engine=tenant, settings=settings, client=client)["conversation_insights"]
    row = next(iter(_rows(lake).values()))
    assert stats["failed"] == 1 and row["status"] == "failed" and row["model"] == "fake-model"
    assert row["topic"] is None and row["sentiment"] is None and row["summary"] is None
    assert row["error"].startswith("invalid answer")

    fake.push("invalid", "timeout")  # schema violation, then a timeout, then a good answer
    client_fast = _client(fake, max_concurrency=1, timeout=0.3)
    fake.timeout_sleep = 1.0
    stats = build_insights(lake, engine=tenant, settings=settings, client=client_fast)["conversation_insights"]
    row = next(iter(_rows(lake).values()))
    assert row["status"] == "ok" and row["topic"] in settings.llm_topics
    assert fake.behaviours == ["500", "429", "malformed", "invalid", "timeout", "ok"]
    assert stats["llm_requests"] == 2  # billed: the invalid and the good answer; the timeout got none
    with tenant.connect() as conn:
        failures = conn.execute(sa.select(sa.func.sum(llm_usage.c.failures))).scalar()
    assert failures == 1


def test_tenant_budget_falls_back_to_rules(lake: Lake, settings: Settings, tenant: sa.Engine, fake: FakeLLM) -> None:
    convs, msgs = sample_conversations(INSTANCE, 8)
    write_silver(lake, convs, msgs)
    limited = _with(settings, llm_daily_request_budget=3)
    stats = build_insights(lake, engine=tenant, settings=limited, client=_client(fake, max_concurrency=2))
    stats = stats["conversation_insights"]
    models = pc.value_counts(lake.open(INSIGHTS).to_pyarrow_table()["model"]).to_pylist()
    assert fake.calls == 3 and stats["budget_exhausted"] == 5
    assert {m["values"]: m["counts"] for m in models} == {"fake-model": 3, "rules-v1": 5}
    # Next day-equivalent: a bigger budget analyses only the rest (3 cached, 5 new calls).
    build_insights(lake, engine=tenant, settings=settings, client=_client(fake))
    assert fake.calls == 8


def test_unregistered_instance_is_analysed_by_rules(
    lake: Lake, settings: Settings, engine: sa.Engine, fake: FakeLLM
) -> None:
    convs, msgs = sample_conversations("unknown-instance", 2)
    write_silver(lake, convs, msgs)
    stats = build_insights(lake, engine=engine, settings=settings, client=_client(fake))["conversation_insights"]
    assert fake.calls == 0 and stats["no_tenant"] == 2
    assert {r["model"] for r in _rows(lake).values()} == {"rules-v1"}


def test_empty_silver_writes_an_empty_table(lake: Lake, settings: Settings) -> None:
    stats = build_insights(lake, settings=settings)["conversation_insights"]
    assert stats["rows"] == 0 and lake.open(INSIGHTS).to_pyarrow_table().num_rows == 0


@pytest.mark.parametrize("mode", ["json_object", "none"])
def test_servers_without_json_schema_support(
    lake: Lake, settings: Settings, tenant: sa.Engine, fake: FakeLLM, mode: str
) -> None:
    convs, msgs = sample_conversations(INSTANCE, 2)
    write_silver(lake, convs, msgs)
    stats = build_insights(lake, engine=tenant, settings=settings, client=_client(fake, response_format=mode))
    assert stats["conversation_insights"]["llm_ok"] == 2 and fake.violations == []
    sent = [r.get("response_format") for r in fake.requests]
    assert sent == ([{"type": "json_object"}] * 2 if mode == "json_object" else [None, None])


def test_chunked_streaming_gives_the_same_table(
    lake: Lake, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llm.insights as insights

    convs, msgs = sample_conversations(INSTANCE, 11)
    silent, _ = conversation(INSTANCE, 50, [("inbound", "x")])  # a closed conversation whose messages are gone
    write_silver(lake, [*convs, silent], msgs)
    build_insights(lake, settings=settings)
    whole = {k: (r["topic"], r["sentiment"], r["content_hash"]) for k, r in _rows(lake).items()}
    monkeypatch.setattr(insights, "CHUNK_SIZE", 2)
    seen: list[tuple[int, int]] = []
    stats = build_insights(lake, settings=settings, progress=lambda done, total: seen.append((done, total)))
    chunked = {k: (r["topic"], r["sentiment"], r["content_hash"]) for k, r in _rows(lake).items()}
    assert chunked == whole and len(chunked) == 12 and stats["conversation_insights"]["rows"] == 12
    assert seen[-1] == (12, 12) and [d for d, _ in seen] == list(range(1, 13))
    assert _rows(lake)[silent["conversation_id"]]["status"] == "ok"


def test_identical_transcripts_are_sent_once(lake: Lake, settings: Settings, tenant: sa.Engine, fake: FakeLLM) -> None:
    same = [("inbound", "Qual o horário de vocês?"), ("outbound", "Das 8h às 18h")]
    pairs = [conversation(INSTANCE, n, same) for n in range(5)]
    other, other_msgs = conversation(INSTANCE, 9, [("inbound", "Meu boleto venceu")])
    write_silver(lake, [c for c, _ in pairs] + [other], [m for _, ms in pairs for m in ms] + other_msgs)
    stats = build_insights(lake, engine=tenant, settings=settings, client=_client(fake))["conversation_insights"]
    rows = _rows(lake)
    assert fake.calls == 2 and stats["llm_ok"] == 2 and stats["cache_hits"] == 4
    assert len({rows[c["conversation_id"]]["topic"] for c, _ in pairs}) == 1
    assert sum(r["prompt_tokens"] for r in rows.values()) == stats["prompt_tokens"]  # charged once
    with tenant.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(llm_usage.c.cache_hits))).scalar() == 4


def test_simulated_lake_end_to_end(lake: Lake, settings: Settings, engine: sa.Engine, fake: FakeLLM) -> None:
    """Simulator → bronze → silver pipeline → insights with the fake LLM (realistic texts, redaction)."""
    from datetime import date

    from beazap.simulator import SimulationConfig, simulate, write_bronze
    from silver.pipeline import build_silver
    from storage.instances import add_instance

    sim = simulate(SimulationConfig(seed=5, instances=2, days=2, start=date(2026, 3, 2)))
    for inst in sim.instances:
        add_instance(engine, inst.id, inst.account_id)
    write_bronze(lake, sim)
    build_silver(lake, settings=settings)
    closed = {
        r["conversation_id"]
        for r in lake.open("silver/conversations").to_pyarrow_table().to_pylist()
        if r["status"] in ("resolved", "expired")
    }
    stats = build_insights(lake, engine=engine, settings=settings, client=_client(fake))["conversation_insights"]
    rows = _rows(lake)
    assert set(rows) == closed and closed
    assert fake.violations == [] and stats["failed"] == 0
    assert fake.calls + stats.get("cache_hits", 0) == len(closed)
    by_tenant = {inst.id: inst.account_id for inst in sim.instances}
    with engine.connect() as conn:
        used = dict(
            conn.execute(
                sa.select(llm_usage.c.account_id, sa.func.sum(llm_usage.c.requests)).group_by(llm_usage.c.account_id)
            ).all()
        )
    assert sum(used.values()) == fake.calls and set(used) <= set(by_tenant.values())
