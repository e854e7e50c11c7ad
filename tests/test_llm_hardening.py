"""The LLM path at its edges: routing decides within its latency budget even when the LLM server
hangs, attempts the server did not answer are not charged to the daily budget, redaction removes
whole phone numbers and obfuscated e-mails, and identical prompts in flight at once are sent once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.settings import Settings
from live.routing import RoutingWorker
from llm.client import LLMClient, LLMError
from llm.redact import redact
from llm.schemas import parse_routing, routing_schema
from storage.tables import actions, llm_usage
from tests.fakes.llm import EMAIL, PHONE_LIKE, FakeLLM
from tests.llm_data import open_conversation, setup_routing_instance

INSTANCE = "loja-a"


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM(timeout_sleep=20.0) as server:
        yield server


def _now() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=5)


def _routes(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(actions).where(actions.c.action == "route")).mappings()]


def _usage(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(llm_usage.c.requests), 0),
                sa.func.coalesce(sa.func.sum(llm_usage.c.failures), 0),
            )
        ).one()
    return {"requests": int(row[0]), "failures": int(row[1])}


def test_routing_decides_within_its_latency_budget_when_the_llm_hangs(
    engine: sa.Engine, settings: Settings, fake: FakeLLM
) -> None:
    setup_routing_instance(engine)
    fake.default = "timeout"  # answers only after 20 s, well past the budget
    open_conversation(engine, INSTANCE, 1, ["quero meu dinheiro"], _now())
    cfg = settings.model_copy(update={"llm_route_settle_seconds": 0.0, "llm_route_deadline_seconds": 0.5})
    client = LLMClient(fake.base_url, model="fake-model", timeout=30.0, max_retries=3, backoff_initial=0.01)
    worker = RoutingWorker(engine, cfg, client=client, worker_id="w1")
    started = time.monotonic()
    try:
        assert worker.run_once() == 1
    finally:
        worker.close()
    elapsed = time.monotonic() - started
    [route] = _routes(engine)
    assert route["details"]["source"] == "rule" and route["details"]["reason"].startswith("fallback:")
    assert elapsed < fake.timeout_sleep / 2  # decided long before the hung server would have answered
    assert _usage(engine) == {"requests": 0, "failures": 1}  # nothing was answered, nothing billed


def test_failed_attempts_do_not_spend_the_daily_budget(engine: sa.Engine, settings: Settings, fake: FakeLLM) -> None:
    setup_routing_instance(engine)
    fake.push("500", "429")  # the first conversation's two attempts fail (unbilled)
    first = open_conversation(engine, INSTANCE, 2, ["quero meu dinheiro"], _now())
    second = open_conversation(engine, INSTANCE, 3, ["preciso de ajuda com a entrega"], _now())
    cfg = settings.model_copy(
        update={"llm_route_settle_seconds": 0.0, "llm_max_concurrency": 1, "llm_daily_request_budget": 1}
    )
    client = LLMClient(fake.base_url, model="fake-model", timeout=5.0, max_retries=2, backoff_initial=0.01)
    worker = RoutingWorker(engine, cfg, client=client, worker_id="w1", batch_size=1)
    try:
        for _ in range(4):
            if not worker.run_once():
                break
    finally:
        worker.close()
    sources = {r["conversation_id"]: r["details"]["source"] for r in _routes(engine)}
    assert set(sources) == {first, second}
    # one conversation's two attempts failed (rules); the budget of 1 billed request was still there
    # for the other one
    assert sorted(sources.values()) == ["llm", "rule"]
    assert _usage(engine) == {"requests": 1, "failures": 1}


@pytest.mark.parametrize(
    "raw",
    [
        "+55-11-9-8765-4321",
        "+55 11 9 8765 4321",
        "+55.11.9.8765.4321",
        "(+55) 11 9-8765-4321",
        "55 (11) 9 8765-4321",
        "11-9-8765-4321",
    ],
)
def test_whole_phone_numbers_are_redacted(raw: str) -> None:
    out = redact(f"meu zap é {raw} ok")
    assert out == "meu zap é [PHONE] ok", out


@pytest.mark.parametrize(
    "raw",
    [
        "ana [at] gmail.com",
        "ana(at)gmail(dot)com",
        "ana (at) gmail (dot) com",
        "ana at gmail dot com",
        "ana {at} gmail [dot] com [dot] br",
        "ana arroba gmail ponto com",
        "ana[arroba]gmail[ponto]com",
        "ana @ gmail . com",
        "ANA [AT] GMAIL [DOT] COM",
    ],
)
def test_obfuscated_emails_are_redacted(raw: str) -> None:
    out = redact(f"escreve pra {raw} ok")
    assert out == "escreve pra [EMAIL] ok", out
    assert "gmail" not in out.lower() and not EMAIL.search(out) and not PHONE_LIKE.search(out)


def test_ordinary_sentences_with_at_and_dot_survive() -> None:
    text = "chego at 10h, ponto de encontro na loja; o pedido ficou at home"
    assert redact(text) == text


def test_identical_prompts_in_flight_are_sent_once() -> None:
    with FakeLLM(latency=1.0) as server:
        client = LLMClient(server.base_url, model="fake-model", timeout=10.0, max_retries=1)
        schema = routing_schema(["t-a", "t-b"])
        messages = [{"role": "system", "content": "route"}, {"role": "user", "content": "quero meu dinheiro"}]
        callers = 6
        start = threading.Barrier(callers)
        results: list[Any] = []
        errors: list[BaseException] = []

        def ask() -> None:
            start.wait()
            try:
                results.append(
                    client.complete(
                        messages,
                        schema_name="routing_decision",
                        schema=schema,
                        parse=lambda d: parse_routing(d, ["t-a", "t-b"]),
                    )
                )
            except (LLMError, AssertionError) as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=ask) for _ in range(callers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        client.close()
    assert errors == [] and len(results) == callers
    assert server.calls == 1
    assert len({r.value.team_id for r in results}) == 1
    assert sum(r.usage.requests for r in results) == 1  # the request is charged once, to its sender
