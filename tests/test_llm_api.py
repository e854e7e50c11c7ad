"""Insights API: /v1/metrics/topics, /v1/metrics/sentiment, /v1/conversations/{id}/insights and
/v1/llm/usage — figures recomputed independently from the rows, filters, tenant isolation (404)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from llm.client import LLMClient
from llm.insights import INSIGHTS, build_insights
from storage import migrate
from storage.db import make_engine
from storage.instances import add_instance
from storage.lake import Lake
from storage.tokens import create_token
from tests.fakes.llm import FakeLLM
from tests.llm_data import sample_conversations, write_silver


class World:
    def __init__(self, root: Path, fake: FakeLLM) -> None:
        self.settings = Settings(
            lake_uri=str(root / "lake"),
            database_url=f"sqlite:///{root / 'ops.db'}",
            llm_base_url=fake.base_url,
            llm_model="fake-model",
            gold_refresh_seconds=0.01,
        )
        self.lake = Lake.from_settings(self.settings)
        self.engine = make_engine(self.settings.database_url)
        migrate.upgrade(self.engine)
        add_instance(self.engine, "inst-a", "acct-a")
        add_instance(self.engine, "inst-b", "acct-b")
        ca, ma = sample_conversations("inst-a", 12)
        cb, mb = sample_conversations("inst-b", 5)
        write_silver(self.lake, ca + cb, ma + mb)
        client = LLMClient(fake.base_url, model="fake-model", backoff_initial=0.01)
        build_insights(self.lake, engine=self.engine, settings=self.settings, client=client)
        self.rows = self.lake.open(INSIGHTS).to_pyarrow_table().to_pylist()
        self.token_a = create_token(self.engine, "acct-a", "read-only")
        self.token_b = create_token(self.engine, "acct-b", "read-only")
        app = create_app(self.settings)
        app.state.engine = self.engine
        self.client = TestClient(app)

    def get(self, path: str, token: str | None = None, **params: Any) -> Any:
        return self.client.get(path, params=params, headers={"Authorization": f"Bearer {token or self.token_a}"})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with FakeLLM() as fake:
        yield World(tmp_path_factory.mktemp("llm_api"), fake)


PERIOD = {"from": "2026-03-01", "to": "2026-03-31"}


def test_topics_match_the_rows_and_stay_in_the_tenant(world: World) -> None:
    res = world.get("/v1/metrics/topics", **PERIOD)
    assert res.status_code == 200, res.text
    body = res.json()
    mine = [r for r in world.rows if r["instance_id"] == "inst-a" and r["status"] == "ok"]
    expected = Counter(r["topic"] for r in mine)
    assert {t["topic"]: t["conversations"] for t in body["topics"]} == dict(expected)
    assert body["analysed"] == len(mine) == 12 and body["instances"] == ["inst-a"]
    assert body["models"] == {"fake-model": 12}
    assert abs(sum(t["share"] for t in body["topics"]) - 1) < 1e-3
    for t in body["topics"]:
        values = [r["sentiment"] for r in mine if r["topic"] == t["topic"]]
        assert t["avg_sentiment"] == pytest.approx(sum(values) / len(values), abs=1e-4)
        assert t["negative"] == sum(1 for v in values if v < -0.2)


def test_sentiment_bands_and_days(world: World) -> None:
    body = world.get("/v1/metrics/sentiment", **PERIOD).json()
    mine = [r for r in world.rows if r["instance_id"] == "inst-a"]
    values = [r["sentiment"] for r in mine]
    o = body["overall"]
    assert o["conversations"] == 12 and o["positive"] + o["neutral"] + o["negative"] == 12
    assert o["positive"] == sum(1 for v in values if v > 0.2) and o["negative"] == sum(1 for v in values if v < -0.2)
    assert [d["day"] for d in body["days"]] == sorted({str(r["opened_date"]) for r in mine})
    assert sum(b["conversations"] for b in body["by_topic"].values()) == 12


def test_filters_and_isolation(world: World) -> None:
    assert world.get("/v1/metrics/topics", instance_id="inst-b", **PERIOD).status_code == 404
    assert world.get("/v1/metrics/topics", token=world.token_b, **PERIOD).json()["analysed"] == 5
    empty = world.get("/v1/metrics/sentiment", **{"from": "2025-01-01", "to": "2025-01-31"}).json()
    assert empty["overall"]["conversations"] == 0 and empty["days"] == []
    assert world.get("/v1/metrics/topics", **{"from": "2026-03-10", "to": "2026-03-01"}).status_code == 422
    assert world.client.get("/v1/metrics/topics").status_code == 401


def test_conversation_insights_detail(world: World) -> None:
    a = next(r for r in world.rows if r["instance_id"] == "inst-a")
    b = next(r for r in world.rows if r["instance_id"] == "inst-b")
    res = world.get(f"/v1/conversations/{a['conversation_id']}/insights")
    assert res.status_code == 200
    body = res.json()
    assert body["topic"] == a["topic"] and body["model"] == "fake-model" and body["status"] == "ok"
    assert world.get(f"/v1/conversations/{b['conversation_id']}/insights").status_code == 404
    res = world.get("/v1/conversations/cv_nope/insights")
    assert res.status_code == 404 and "error" in res.json()


def test_usage_is_per_tenant(world: World) -> None:
    today = datetime.now(UTC).date().isoformat()
    a = world.get("/v1/llm/usage").json()
    b = world.get("/v1/llm/usage", token=world.token_b).json()
    assert a["account_id"] == "acct-a" and a["totals"]["requests"] == 12 and b["totals"]["requests"] == 5
    assert a["days"][0]["day"] == today and a["days"][0]["purpose"] == "analysis"
    assert a["today"]["remaining_requests"] == a["budget"]["requests"] - 12
    assert a["llm_configured"] is True and a["model"] == "fake-model"
    assert "llm_api_key" not in str(a)
    for bad in (
        {"to": "0001-01-01"},
        {"from": "2026-03-10", "to": "2026-03-01"},
        {"from": "2020-01-01", "to": "2026-01-01"},
    ):
        assert world.get("/v1/llm/usage", **bad).status_code == 422


def test_schema_fuzzing_finds_no_server_errors(world: World) -> None:
    """Hypothesis-generated requests (schemathesis) to the non-metrics insights operations."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app).include(
        path_regex=r"^/v1/(llm/usage|conversations/\{conversation_id\}/insights)$"
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 2
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {world.token_a}"})
            assert response.status_code < 500, (case.path, case.query, response.text)
            if response.status_code == 200:
                case.validate_response(response)

        check()


def test_usage_says_configured_when_another_process_uses_the_llm(engine: Any, tmp_path: Path) -> None:
    """Regression: the API process has no BEAZAP_LLM_BASE_URL while the routing worker (its own
    process and environment) calls the LLM — the usage answer must not say "not configured"."""
    from llm.store import CachedAnswer, add_usage, cache_put_many

    settings = Settings(lake_uri=str(tmp_path / "lake"), database_url="sqlite://", llm_base_url=None)
    add_instance(engine, "inst-w", "acct-w")
    token = create_token(engine, "acct-w", "read-only")
    app = create_app(settings)
    app.state.engine = engine
    client = TestClient(app)

    def usage() -> dict[str, Any]:
        res = client.get("/v1/llm/usage", headers={"Authorization": f"Bearer {token}"})
        assert res.status_code == 200, res.text
        return res.json()

    assert usage()["llm_configured"] is False and usage()["model"] is None  # nothing anywhere: rules only
    with engine.begin() as conn:  # what the routing worker records after one LLM answer
        add_usage(conn, "acct-w", "route", requests=1, prompt_tokens=120, completion_tokens=30)
        answer = CachedAnswer({"team": "t"}, 120, 30)
        cache_put_many(conn, "acct-w", "route", {("h" * 64, "v1", "worker-model"): answer})
    body = usage()
    assert body["llm_configured"] is True and body["model"] == "worker-model"
    assert body["totals"]["requests"] == 1
