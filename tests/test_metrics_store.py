"""The serving store (``gold.serving.store``) answers what an in-memory copy of gold loaded straight from
Delta answers (the reader's design before the store), on random filters, through both the SQL path and
the numpy fast path; several readers share one store built once; a gold change publishes a new store
and removes the old one while readers holding it keep answering."""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_metrics_fast import same

from gold.runner import build_gold
from gold.serving import fast, store
from gold.serving import queries as q
from gold.serving.reader import GoldReader
from gold.stats import install as install_macros
from storage.lake import Lake
from tests.support.gold_fixtures import synthetic

START = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
AS_OF = datetime(2026, 3, 30, tzinfo=UTC)
INSTANCES = ["inst-s1", "inst-s2", "inst-s3"]
TEAMS = [f"{i}-team{k}" for i in INSTANCES for k in range(2)]
ATTENDANTS = [f"{i}-att{k}" for i in INSTANCES for k in range(3)]


def in_memory_gold(lake: Lake) -> duckdb.DuckDBPyConnection:
    """The previous design: every served table loaded from Delta into an in-memory DuckDB."""
    con = duckdb.connect(":memory:")
    con.execute("set TimeZone = 'UTC'")
    con.execute("create schema gold")
    install_macros(con)
    for table in store.SERVED_TABLES:
        con.register("__src", lake.dataset(f"gold/{table}", lake.open(f"gold/{table}")))
        con.execute(f"create table gold.{table} as select * from __src order by {store.SORT_KEYS[table]}")
        con.unregister("__src")
    for statement in store.DERIVED:
        con.execute(statement)
    return con


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root: Path = tmp_path_factory.mktemp("store")
    lake = Lake(root=str(root / "lake"))
    synthetic(lake, instances=INSTANCES, start=START, days=28, per_day=9, as_of=AS_OF)
    build_gold(lake, as_of=AS_OF)
    return lake


@pytest.fixture(scope="module")
def reference(lake: Lake) -> duckdb.DuckDBPyConnection:
    return in_memory_gold(lake)


@pytest.fixture(scope="module")
def reader(lake: Lake) -> GoldReader:
    gold = GoldReader(lake, background=False)
    gold.refresh(force=True)
    return gold


def answers(con: duckdb.DuckDBPyConnection, f: q.Filters) -> dict[str, Any]:
    """Every metrics answer of the SQL path for ``f``."""
    out: dict[str, Any] = {"overview": q.overview(con, f), "sla": q.sla(con, f), "calls": q.calls(con, f)}
    for g in q.GRANULARITY_BUCKET:
        for by in q.BY_COLUMN:
            out[f"volume-{g}-{by}"] = q.volume(con, f, g, by)
        if g != "hour" and not f.people:
            out[f"activity-{g}"] = q.activity(con, f, g)
    out["heatmap"] = q.heatmap(con, f)
    for dim in ("attendant", "team"):
        out[f"perf-{dim}"] = q.performance(con, f, dim, "conversations_resolved")
    out["facts"] = q.facts_page(con, f, extra=[], after=None, limit=50)
    return out


FILTERS = st.builds(
    lambda instances, end, days, teams, attendants: q.Filters(
        instance_ids=sorted(instances),
        start=end - timedelta(days=days - 1),
        end=end,
        team_ids=sorted(teams),
        attendant_ids=sorted(attendants),
    ),
    st.sets(st.sampled_from([*INSTANCES, "inst-unknown"]), max_size=3),
    st.dates(date(2026, 2, 20), date(2026, 4, 10)),
    st.integers(1, 45),
    st.sets(st.sampled_from(TEAMS), max_size=2) | st.just(set()),
    st.sets(st.sampled_from(ATTENDANTS), max_size=2) | st.just(set()),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(f=FILTERS)
def test_store_answers_equal_the_in_memory_copy(
    reader: GoldReader, reference: duckdb.DuckDBPyConnection, f: q.Filters
) -> None:
    expected = answers(reference.cursor(), f)
    with reader.cursor() as con:
        same(expected, answers(con, f))
    if fast.supports(f):
        g = reader.arrays()
        same(expected["overview"], fast.overview(g, f))
        same(expected["sla"], fast.sla(g, f))
        same(expected["volume-hour-none"], fast.volume(g, f, "hour", "none"))
        same(expected["volume-week-none"], fast.volume(g, f, "week", "none"))
        for dim in ("attendant", "team"):
            same(expected[f"perf-{dim}"], fast.performance(g, f, dim, "conversations_resolved"))


def test_the_random_filters_reach_data(reader: GoldReader, reference: duckdb.DuckDBPyConnection) -> None:
    """The property above compares non-empty answers too: one fixed filter finds data in both paths."""
    f = q.Filters(instance_ids=INSTANCES[:2], start=date(2026, 3, 5), end=date(2026, 3, 25), team_ids=TEAMS[:1])
    with reader.cursor() as con:
        overview = q.overview(con, f)["current"]
    assert overview["conversations_opened"] > 0
    assert overview == q.overview(reference.cursor(), f)["current"]


def test_workers_share_one_store_built_once(lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[Path] = []
    original = store.build

    def counting(*args: Any) -> None:
        builds.append(args[2])
        original(*args)

    monkeypatch.setattr(store, "build", counting)
    readers = [GoldReader(lake, background=False, root=tmp_path / "serving") for _ in range(3)]
    threads = [threading.Thread(target=r.refresh, kwargs={"force": True}) for r in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1
    assert {r._current().path for r in readers} == {builds[0]}
    assert [p.name for p in (tmp_path / "serving").iterdir() if p.is_dir()] == [builds[0].name]
    with pytest.raises(duckdb.Error):  # the workers' connections are read-only
        readers[0].cursor().execute("create table gold.x (a int)")


def test_a_gold_change_publishes_a_new_store_and_removes_the_old(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path / "lake"))
    synthetic(lake, instances=["inst-n"], start=START, days=3, per_day=4, as_of=AS_OF)
    build_gold(lake, as_of=AS_OF)
    old = GoldReader(lake, background=False)
    f = q.Filters(instance_ids=["inst-n"], start=date(2026, 3, 1), end=date(2026, 3, 10))
    before = fast.overview(old.arrays(), f)
    old_cursor = old.cursor()
    old_folder = old._current().path

    synthetic(lake, instances=["inst-n"], start=START, days=6, per_day=4, as_of=AS_OF)
    build_gold(lake, as_of=AS_OF)
    new = GoldReader(lake, background=False)
    after = fast.overview(new.arrays(), f)
    assert after["current"]["conversations_opened"] > before["current"]["conversations_opened"]
    assert new._current().path != old_folder and not old_folder.exists()
    # The old reader still answers from the files it holds open, then moves to the new store.
    same(q.overview(old_cursor, f), before)
    assert old.refresh() is True
    same(fast.overview(old.arrays(), f), after)


def test_a_store_removed_before_it_opens_is_built_again(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process may publish a newer store and remove this one between its build and its open."""
    real = store.ensure
    folders: list[Path] = []

    def racing(*args: Any) -> Path:
        folder = real(*args)
        if not folders:
            shutil.rmtree(folder)
        folders.append(folder)
        return folder

    monkeypatch.setattr(store, "ensure", racing)
    gold = GoldReader(lake, background=False, root=tmp_path / "serving")
    assert gold.refresh(force=True) is True
    assert len(folders) == 2 and gold._current().path.exists()
    f = q.Filters(instance_ids=INSTANCES, start=date(2026, 3, 5), end=date(2026, 3, 25))
    assert fast.overview(gold.arrays(), f)["current"]["conversations_opened"] > 0
