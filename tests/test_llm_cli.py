"""`beazap llm …`: analyze (rules and LLM), routing config, route-worker --once, usage, check, errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from beazap.cli import app
from core.settings import Settings, get_settings
from llm.insights import INSIGHTS
from storage import migrate
from storage.db import get_engine
from storage.lake import Lake
from storage.tables import actions, instances
from tests.fakes.llm import FakeLLM
from tests.llm_data import PLANTED, open_conversation, sample_conversations, setup_routing_instance, write_silver

runner = CliRunner()


@pytest.fixture
def ops_engine(settings: Settings) -> sa.Engine:
    engine = get_engine(settings)
    migrate.upgrade(engine)
    return engine


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        server.forbid(*PLANTED.values())
        monkeypatch.setenv("BEAZAP_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("BEAZAP_LLM_MODEL", "fake-model")
        monkeypatch.setenv("BEAZAP_LLM_API_KEY", "sk-test-secret")
        monkeypatch.setenv("BEAZAP_LLM_ROUTE_SETTLE_SECONDS", "0")
        get_settings.cache_clear()
        yield server
        get_settings.cache_clear()


def test_analyze_with_rules_then_with_the_llm(
    lake: Lake, ops_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_routing_instance(ops_engine)
    convs, msgs = sample_conversations("loja-a", 4)
    write_silver(lake, convs, msgs)
    result = runner.invoke(app, ["llm", "analyze"])
    assert result.exit_code == 0, result.output
    assert "4 conversations analysed with rules" in result.output
    assert set(lake.open(INSIGHTS).to_pyarrow_table()["model"].to_pylist()) == {"rules-v1"}

    with FakeLLM() as server:
        monkeypatch.setenv("BEAZAP_LLM_BASE_URL", server.base_url)
        get_settings.cache_clear()
        result = runner.invoke(app, ["llm", "analyze"])
        assert result.exit_code == 0, result.output
        assert "4 by the LLM" in result.output and server.calls == 4
        result = runner.invoke(app, ["llm", "analyze"])
        assert "4 from cache" in result.output and server.calls == 4
        assert server.violations == []
        usage = runner.invoke(app, ["llm", "usage", "acme"])
        assert usage.exit_code == 0 and "analysis" in usage.output
    get_settings.cache_clear()


def test_routing_config_and_route_worker_once(ops_engine: sa.Engine, fake: FakeLLM) -> None:
    setup_routing_instance(ops_engine, routing={"router": "round_robin"})
    result = runner.invoke(
        app,
        ["llm", "routing", "loja-a", "--default-team", "t-support", "--rule", "t-billing=boleto,fatura:high"],
    )
    assert result.exit_code == 0, result.output
    with ops_engine.connect() as conn:
        config = conn.execute(sa.select(instances.c.routing)).scalar()
    assert config["router"] == "llm" and config["rules"][0] == {
        "team_id": "t-billing",
        "keywords": ["boleto", "fatura"],
        "urgency": "high",
    }
    cid = open_conversation(
        ops_engine, "loja-a", 1, ["segunda via do boleto"], datetime.now(UTC) - timedelta(seconds=5)
    )
    result = runner.invoke(app, ["llm", "route-worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "routed 1 conversations" in result.output
    with ops_engine.connect() as conn:
        team, details = conn.execute(
            sa.select(actions.c.team_id, actions.c.details).where(actions.c.conversation_id == cid)
        ).one()
    assert team == "t-billing" and details["urgency"] == "high"


def test_check_and_errors(ops_engine: sa.Engine, fake: FakeLLM) -> None:
    result = runner.invoke(app, ["llm", "check"])
    assert result.exit_code == 0, result.output
    assert "ok: fake-model answered" in result.output and "sk-test-secret" not in result.output
    fake.default = "malformed"
    result = runner.invoke(app, ["llm", "check"])
    assert result.exit_code != 0 and "invalid answer" in result.output
    result = runner.invoke(app, ["llm", "routing", "nope"])
    assert result.exit_code != 0 and "unknown instance" in result.output
    result = runner.invoke(app, ["llm", "routing", "loja-x", "--rule", "bad"])
    assert result.exit_code != 0
