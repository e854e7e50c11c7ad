"""Live routing: keyword rules, LLM decisions, fallbacks on failure/budget, after-hours, the queue
(SKIP LOCKED / atomic claim, leases) and the ``llm`` router hooked into auto-assignment."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.settings import Settings
from live.assignment import assign_next
from live.routing import RoutingWorker
from live.routing_queue import claim, enqueue
from llm.client import LLMClient
from storage.tables import actions, conversations, llm_jobs, llm_usage
from tests.fakes.llm import FakeLLM
from tests.llm_data import PLANTED, open_conversation, setup_routing_instance

INSTANCE = "loja-a"


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    def pick_billing_for_money(request: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
        text = request["messages"][-1]["content"].lower()
        team = "t-billing" if "dinheiro" in text else "t-support"
        return {"team_id": team, "urgency": "high", "priority": 1, "confidence": 0.82, "reason": "money"}

    with FakeLLM(responder=pick_billing_for_money) as server:
        server.forbid(*PLANTED.values())
        yield server


def _settings(settings: Settings, **kw: Any) -> Settings:
    return settings.model_copy(update={"llm_route_settle_seconds": 0.0, "llm_max_concurrency": 2, **kw})


def _client(fake: FakeLLM) -> LLMClient:
    return LLMClient(fake.base_url, model="fake-model", timeout=1.0, max_retries=2, backoff_initial=0.01)


def _route_actions(engine: sa.Engine, conversation_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(actions).where(actions.c.conversation_id == conversation_id, actions.c.action == "route")
        ).mappings()
        return [dict(r) for r in rows]


def _drain(worker: RoutingWorker, rounds: int = 5) -> int:
    total = 0
    for _ in range(rounds):
        handled = worker.run_once()
        total += handled
        if not handled:
            break
    return total


def _now() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=5)


def test_keyword_rule_routes_without_calling_the_llm(engine: sa.Engine, settings: Settings, fake: FakeLLM) -> None:
    setup_routing_instance(engine)
    cid = open_conversation(engine, INSTANCE, 1, ["Oi", "minha FATURA veio em dobro"], _now())
    worker = RoutingWorker(engine, _settings(settings), client=_client(fake), worker_id="w1")
    try:
        assert _drain(worker) == 1
    finally:
        worker.close()
    [route] = _route_actions(engine, cid)
    assert route["team_id"] == "t-billing" and route["attendant_id"] == "a-t-billing"
    assert route["details"]["source"] == "rule" and route["details"]["reason"] == "keyword"
    assert route["details"]["urgency"] == "medium" and "latency_ms" in route["details"]
    assert fake.calls == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(conversations.c.assignee_id).where(conversations.c.id == cid)).scalar() == (
            "a-t-billing"
        )
        assert conn.execute(sa.select(llm_jobs.c.status)).scalars().all() == ["done"]


def test_llm_decides_with_redacted_text_and_logs_model_and_confidence(
    engine: sa.Engine, settings: Settings, fake: FakeLLM
) -> None:
    setup_routing_instance(engine)
    texts = [f"quero meu dinheiro de volta, CPF {PLANTED['cpf']}", f"me liga {PLANTED['phone']}"]
    cid = open_conversation(engine, INSTANCE, 2, texts, _now())
    cid2 = open_conversation(engine, INSTANCE, 3, ["o aplicativo não abre"], _now())
    worker = RoutingWorker(engine, _settings(settings), client=_client(fake), worker_id="w1")
    try:
        assert _drain(worker) == 2
    finally:
        worker.close()
    assert fake.violations == [] and fake.calls == 2
    [route] = _route_actions(engine, cid)
    d = route["details"]
    assert route["team_id"] == "t-billing" and d["source"] == "llm" and d["model"] == "fake-model"
    assert d["confidence"] == 0.82 and d["urgency"] == "high" and d["priority"] == 1
    assert d["prompt_version"] == settings.llm_prompt_version and d["latency_ms"] > 0
    assert _route_actions(engine, cid2)[0]["team_id"] == "t-support"
    with engine.connect() as conn:
        used = conn.execute(sa.select(llm_usage.c.purpose, llm_usage.c.requests)).all()
    assert used == [("route", 2)]


def test_llm_failure_falls_back_to_the_default_team(engine: sa.Engine, settings: Settings, fake: FakeLLM) -> None:
    setup_routing_instance(engine)
    fake.default = "500"
    cid = open_conversation(engine, INSTANCE, 4, ["quero meu dinheiro"], _now())
    worker = RoutingWorker(engine, _settings(settings), client=_client(fake), worker_id="w1")
    try:
        assert _drain(worker) == 1
    finally:
        worker.close()
    assert fake.calls == 2  # max_retries attempts, then rules
    [route] = _route_actions(engine, cid)
    assert route["team_id"] == "t-support" and route["details"]["source"] == "rule"
    assert route["details"]["reason"] == "fallback:http_500"


def test_spent_budget_skips_the_llm(engine: sa.Engine, settings: Settings, fake: FakeLLM) -> None:
    setup_routing_instance(engine)
    cid = open_conversation(engine, INSTANCE, 5, ["quero meu dinheiro"], _now())
    worker = RoutingWorker(engine, _settings(settings, llm_daily_request_budget=0), client=_client(fake))
    try:
        _drain(worker)
    finally:
        worker.close()
    assert fake.calls == 0
    assert _route_actions(engine, cid)[0]["details"]["reason"] == "fallback:budget"


def test_after_hours_team_outside_business_hours(engine: sa.Engine, settings: Settings, fake: FakeLLM) -> None:
    closed_always = {"weekly": {}, "holidays": []}
    routing = {"router": "llm", "default_team_id": "t-support", "after_hours_team_id": "t-night"}
    setup_routing_instance(engine, routing=routing, business_hours=closed_always)
    cid = open_conversation(engine, INSTANCE, 6, ["quero meu dinheiro"], _now())
    worker = RoutingWorker(engine, _settings(settings), client=_client(fake))
    try:
        _drain(worker)
    finally:
        worker.close()
    [route] = _route_actions(engine, cid)
    assert route["team_id"] == "t-night" and route["details"]["reason"] == "after_hours" and fake.calls == 0


def test_without_llm_rules_route_to_the_default_team(engine: sa.Engine, settings: Settings) -> None:
    setup_routing_instance(engine)
    cid = open_conversation(engine, INSTANCE, 7, ["boa tarde"], _now())
    worker = RoutingWorker(engine, _settings(settings))
    assert worker.client is None
    try:
        _drain(worker)
    finally:
        worker.close()
    [route] = _route_actions(engine, cid)
    assert route["team_id"] == "t-support" and route["details"]["reason"] == "default"


def test_llm_router_from_auto_assignment_only_queues(engine: sa.Engine, settings: Settings, fake: FakeLLM) -> None:
    setup_routing_instance(engine)
    cid = open_conversation(engine, INSTANCE, 8, ["quero meu dinheiro"], _now())
    assert assign_next(engine, cid) is None  # the llm router never decides inline
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(llm_jobs)).scalar() == 1
    assert fake.calls == 0 and _route_actions(engine, cid) == []
    worker = RoutingWorker(engine, _settings(settings), client=_client(fake))
    try:
        _drain(worker)
    finally:
        worker.close()
    assert _route_actions(engine, cid)[0]["team_id"] == "t-billing"


def test_closed_conversation_job_is_skipped(engine: sa.Engine, settings: Settings) -> None:
    setup_routing_instance(engine)
    cid = open_conversation(engine, INSTANCE, 9, ["oi"], _now())
    with engine.begin() as conn:
        enqueue(conn, INSTANCE, cid)
        conn.execute(sa.update(conversations).where(conversations.c.id == cid).values(status="resolved"))
    worker = RoutingWorker(engine, _settings(settings))
    try:
        _drain(worker)
    finally:
        worker.close()
    with engine.connect() as conn:
        assert conn.execute(sa.select(llm_jobs.c.result)).scalar() == {"skipped": "closed"}
    assert _route_actions(engine, cid) == []


def test_concurrent_claims_never_share_a_job_and_leases_expire(engine: sa.Engine) -> None:
    setup_routing_instance(engine)
    with engine.begin() as conn:
        for n in range(40):
            enqueue(conn, INSTANCE, f"cv_{n:04d}", run_after=datetime.now(UTC) - timedelta(seconds=1))
        assert not enqueue(conn, INSTANCE, "cv_0000")  # one job per conversation
    claimed: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def grab(worker: str) -> None:
        try:
            mine: list[str] = []
            while batch := claim(engine, worker, limit=3, lease_seconds=60):
                mine.extend(j.conversation_id for j in batch)
            claimed[worker] = mine
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    everything = [c for ids in claimed.values() for c in ids]
    assert sorted(everything) == [f"cv_{n:04d}" for n in range(40)]  # each exactly once

    with engine.begin() as conn:  # a worker died: its lease lapses and the job comes back
        conn.execute(sa.update(llm_jobs).values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
    again = claim(engine, "w-new", limit=100)
    assert len(again) == 40 and all(j.attempts == 2 for j in again)


def test_end_to_end_from_bronze_through_the_projector(
    engine: sa.Engine, settings: Settings, lake: Any, fake: FakeLLM
) -> None:
    """Webhook in bronze → projector opens the conversation → auto-assignment queues (no LLM call in
    the projector) → the routing worker asks the LLM (redacted) → route action with the team."""
    from live.assignment import auto_assign
    from live.projector import Projector
    from tests.ops_helpers import msg, write_webhooks

    setup_routing_instance(engine)
    ts = int(datetime.now(UTC).timestamp()) - 5
    write_webhooks(
        lake,
        [
            msg(INSTANCE, "w1", ts, text="Oi, quero meu dinheiro de volta"),
            msg(INSTANCE, "w2", ts + 1, text=f"meu telefone é {PLANTED['phone']}"),
        ],
    )
    projector = Projector(lake, engine, _settings(settings))
    projector.on_new_conversations = lambda ids: auto_assign(engine, ids)
    projector.run_once()
    with engine.connect() as conn:
        [(cid, assignee)] = conn.execute(sa.select(conversations.c.id, conversations.c.assignee_id)).all()
        assert assignee is None
        assert conn.execute(sa.select(llm_jobs.c.conversation_id)).scalars().all() == [cid]
    assert fake.calls == 0
    worker = RoutingWorker(engine, _settings(settings), client=_client(fake))
    try:
        assert _drain(worker) == 1
    finally:
        worker.close()
    [route] = _route_actions(engine, cid)
    assert route["team_id"] == "t-billing" and route["attendant_id"] == "a-t-billing"
    assert route["details"]["source"] == "llm" and fake.violations == [] and fake.calls == 1


def test_run_forever_stops_and_finished_jobs_are_purged(engine: sa.Engine, settings: Settings) -> None:
    from live.routing_queue import purge

    setup_routing_instance(engine)
    cid = open_conversation(engine, INSTANCE, 11, ["boa noite"], _now())
    worker = RoutingWorker(engine, _settings(settings, llm_route_poll_ms=20))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while not _route_actions(engine, cid) and datetime.now(UTC) < deadline:
        stop.wait(0.05)
    stop.set()
    thread.join(timeout=30)
    worker.close()
    assert not thread.is_alive() and _route_actions(engine, cid)[0]["team_id"] == "t-support"
    assert purge(engine, timedelta(days=1)) == 0  # recent jobs are kept
    with engine.begin() as conn:
        conn.execute(sa.update(llm_jobs).values(updated_at=datetime.now(UTC) - timedelta(days=2)))
    assert purge(engine, timedelta(days=1)) == 1


def test_logs_carry_no_identifiers_or_secrets(engine: sa.Engine, settings: Settings, fake: FakeLLM) -> None:
    import io

    from core.logging import configure_logging

    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    try:
        setup_routing_instance(engine)
        open_conversation(engine, INSTANCE, 12, [f"quero meu dinheiro, {PLANTED['email']} {PLANTED['phone']}"], _now())
        fake.default = "500"
        worker = RoutingWorker(engine, _settings(settings), client=_client(fake))
        try:
            _drain(worker)
        finally:
            worker.close()
    finally:
        configure_logging()
    out = stream.getvalue()
    assert "routing decided" in out
    for value in (*PLANTED.values(), "98765", "dinheiro"):
        assert value not in out


def test_a_worker_that_lost_its_lease_changes_nothing(engine: sa.Engine, settings: Settings) -> None:
    setup_routing_instance(engine)
    cid = open_conversation(engine, INSTANCE, 13, ["oi"], _now())
    with engine.begin() as conn:
        enqueue(conn, INSTANCE, cid, run_after=datetime.now(UTC) - timedelta(seconds=1))
    slow = RoutingWorker(engine, _settings(settings), worker_id="slow")
    fast = RoutingWorker(engine, _settings(settings), worker_id="fast")
    try:
        [job] = claim(engine, "slow", lease_seconds=60)
        with engine.begin() as conn:  # the slow worker's lease lapses and the fast one takes the job
            conn.execute(sa.update(llm_jobs).values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
        assert fast.run_once() == 1
        slow._handle(job)  # finishes late: must not route a second time
    finally:
        slow.close()
        fast.close()
    assert len(_route_actions(engine, cid)) == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(llm_jobs.c.status, llm_jobs.c.locked_by)).one() == ("done", "fast")
