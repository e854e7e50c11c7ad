"""The metrics fast path (numpy arrays, ``gold.serving.fast``) answers exactly what the SQL path
(``gold.serving.queries``) answers: same keys in the same order, same rows, same values (floats
to 1e-9), for single and several instances, unknown instances, empty periods and every granularity —
over gold built from the synthetic silver lake (real DuckDB and Delta)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_metrics_api import A_INSTANCES, PERIOD, World

from gold.runner import build_gold
from gold.serving import fast
from gold.serving import queries as q
from gold.serving.reader import GoldReader
from storage.lake import Lake
from tests.support.gold_fixtures import synthetic

START = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
AS_OF = datetime(2026, 3, 30, tzinfo=UTC)
INSTANCES = ["inst-f1", "inst-f2", "inst-f3"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The metrics API tests' world (two tenants, simulator-like gold, real app)."""
    root = tmp_path_factory.mktemp("fast-http")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BEAZAP_SECRET_KEY_FILE", str(root / "secret.key"))
        w = World(root)
        yield w
        w.engine.dispose()


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> GoldReader:
    root: Path = tmp_path_factory.mktemp("fast")
    lake = Lake(root=str(root / "lake"))
    synthetic(lake, instances=INSTANCES, start=START, days=28, per_day=9, as_of=AS_OF)
    build_gold(lake, as_of=AS_OF)
    gold = GoldReader(lake, background=False)
    gold.refresh(force=True)
    return gold


def same(sql: Any, numpy: Any, path: str = "$") -> None:
    """Structural equality; floats compared to 1e-9 (summation order may differ)."""
    if isinstance(sql, float) or isinstance(numpy, float):
        assert sql is not None and numpy is not None, (path, sql, numpy)
        assert math.isclose(sql, numpy, rel_tol=1e-9, abs_tol=1e-9), (path, sql, numpy)
    elif isinstance(sql, dict):
        assert isinstance(numpy, dict) and list(sql) == list(numpy), (path, list(sql), numpy)
        for key in sql:
            same(sql[key], numpy[key], f"{path}.{key}")
    elif isinstance(sql, list):
        assert isinstance(numpy, list) and len(sql) == len(numpy), (path, sql, numpy)
        for i, (a, b) in enumerate(zip(sql, numpy, strict=True)):
            same(a, b, f"{path}[{i}]")
    else:
        assert type(sql) is type(numpy) and sql == numpy, (path, sql, numpy)


CASES = [
    (["inst-f1"], date(2026, 3, 15), 1),
    (["inst-f1"], date(2026, 3, 29), 7),
    (["inst-f2", "inst-f1"], date(2026, 3, 20), 10),
    (INSTANCES, date(2026, 3, 31), 30),
    (["inst-f3"], date(2026, 5, 1), 5),  # after the data: empty current period
    (["inst-f3"], date(2026, 2, 20), 5),  # before the data
    (["nope"], date(2026, 3, 15), 7),
    ([], date(2026, 3, 15), 7),
]


@pytest.mark.parametrize(("instances", "end", "days"), CASES)
def test_fast_path_equals_sql(reader: GoldReader, instances: list[str], end: date, days: int) -> None:
    f = q.Filters(instances, end - timedelta(days=days - 1), end)
    g = reader.arrays()
    with reader.cursor() as con:
        same(q.overview(con, f), fast.overview(g, f))
        for granularity in ("hour", "day", "week", "month"):
            same(q.volume(con, f, granularity, "none"), fast.volume(g, f, granularity, "none"))
        same(q.sla(con, f), fast.sla(g, f))
        for dimension in ("attendant", "team"):
            for sort in ("conversations_resolved", "frt_median_seconds", "messages_sent"):
                same(q.performance(con, f, dimension, sort), fast.performance(g, f, dimension, sort))


def test_the_data_exercises_the_answers(reader: GoldReader) -> None:
    """Guard against a vacuous comparison: the busy case has rows, statistics and previous values."""
    f = q.Filters(INSTANCES, date(2026, 3, 16), date(2026, 3, 29))
    g = reader.arrays()
    ov = fast.overview(g, f)
    assert ov["current"]["messages_inbound"] > 0 and ov["previous"]["conversations_opened"] > 0
    assert ov["current"]["frt_median_seconds"] is not None
    assert len(fast.volume(g, f, "hour", "none")["rows"]) > 24
    ranking = fast.performance(g, f, "attendant", "conversations_resolved")["rows"]
    assert ranking and any(r["previous"] for r in ranking)
    assert any(c["sla_breached"] for c in fast.sla(g, f)["clocks"])


def test_people_filters_use_the_sql_path() -> None:
    f = q.Filters(["inst-f1"], date(2026, 3, 1), date(2026, 3, 7), attendant_ids=["att-1"])
    assert not fast.supports(f) and not fast.supports_volume(f, "none")
    assert fast.supports(q.Filters(["inst-f1"], date(2026, 3, 1), date(2026, 3, 7)))
    assert not fast.supports_volume(q.Filters(["inst-f1"], date(2026, 3, 1), date(2026, 3, 7)), "kind")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/metrics/overview",
        "/v1/metrics/volume?granularity=hour",
        "/v1/metrics/volume?granularity=day",
        "/v1/metrics/volume?granularity=week",
        "/v1/metrics/volume?granularity=month",
        "/v1/metrics/sla",
        "/v1/metrics/attendants",
        "/v1/metrics/teams?sort=frt_median_seconds",
    ],
)
def test_http_answers_equal_with_the_fast_path_off(world: World, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """Whole answers through HTTP (drill-down URLs included) are the same with and without the fast path."""
    params = {"instance_id": A_INSTANCES, **PERIOD}
    world.app.state.metrics_cache.clear()
    with_fast = world.get(path, **params)
    assert with_fast.status_code == 200, with_fast.text
    monkeypatch.setattr(fast, "supports", lambda f: False)
    monkeypatch.setattr(fast, "supports_volume", lambda f, by: False)
    world.app.state.metrics_cache.clear()
    with_sql = world.get(path, **params)
    assert with_sql.status_code == 200, with_sql.text
    same(with_sql.json(), with_fast.json())
