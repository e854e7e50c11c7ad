"""Chunked full rebuild == one-pass full rebuild.

A full silver rebuild runs window by window of bronze receipt time (``silver.chunks``); with a tiny
``silver_rebuild_chunk_rows`` a simulated lake is cut into many windows (days and slices of days),
and every silver table must equal the one-pass rebuild row for row. The Hypothesis variant uses the
random worlds of the incremental test (LIDs learned late, acks/edits before their message, ops
actions) with random chunk sizes.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_silver_incremental import traffic
from test_silver_scenarios import T0

from beazap.simulator import SimulationConfig, simulate, write_bronze
from bronze import schema as B  # noqa: N812
from core.settings import Settings
from silver import chunks
from silver import schema as S  # noqa: N812
from silver.pipeline import ALL_TABLES, build_silver
from storage.lake import Lake
from tests.support.bronze_rows import append_ops, append_webhooks, ops_rows, webhook_rows


def _snapshot(lake: Lake) -> dict[str, list[str]]:
    out = {}
    for table in ALL_TABLES:
        dt = lake.open_or_none(table)
        rows = [] if dt is None else dt.to_pyarrow_table().to_pylist()
        out[table] = sorted(json.dumps(r, default=str, sort_keys=True) for r in rows)
    return out


def _rebuild(lake: Lake, root: str, chunk_rows: int) -> tuple[dict, dict[str, list[str]]]:
    stats = build_silver(lake, full=True, settings=Settings(lake_uri=root, silver_rebuild_chunk_rows=chunk_rows))
    return stats, _snapshot(lake)


def _assert_same(one: dict[str, list[str]], chunked: dict[str, list[str]]) -> None:
    for table in ALL_TABLES:
        only_one = sorted(set(one[table]) - set(chunked[table]))[:3]
        only_chunked = sorted(set(chunked[table]) - set(one[table]))[:3]
        assert one[table] == chunked[table], (table, only_one, only_chunked)


@pytest.fixture(scope="module")
def sim_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, str]:
    root = str(tmp_path_factory.mktemp("lake"))
    lake = Lake(root)
    sim = simulate(SimulationConfig(seed=11, instances=2, days=5, conversations_per_day=30, start=date(2026, 3, 28)))
    write_bronze(lake, sim)
    return lake, root


def test_plan_covers_all_rows_once(sim_lake: tuple[Lake, str]) -> None:
    lake, _ = sim_lake
    dt = lake.open(B.WEBHOOK_EVENTS)
    total = dt.to_pyarrow_dataset().count_rows()
    windows = chunks.plan(dt, 400)
    assert len(windows) > 5  # days cut in slices too
    assert windows[0].lo is None and windows[-1].hi is None
    assert all(a.hi == b.lo for a, b in itertools.pairwise(windows))
    counts = [dt.to_pyarrow_dataset().count_rows(filter=w.bronze_filter()) for w in windows]
    assert sum(counts) == total
    assert chunks.plan(dt, 0) == [chunks.Window(None, None)]
    assert chunks.plan(dt, total) == [chunks.Window(None, None)]


def test_chunked_full_equals_one_pass_on_a_simulated_lake(sim_lake: tuple[Lake, str]) -> None:
    lake, root = sim_lake
    one_stats, one = _rebuild(lake, root, 0)
    chunked_stats, chunked = _rebuild(lake, root, 300)  # ~ a dozen windows, across a month boundary
    _assert_same(one, chunked)
    assert chunked_stats[S.MESSAGES]["rows_total"] == one_stats[S.MESSAGES]["rows_total"] > 0
    assert chunked_stats[S.CONVERSATIONS]["rows_total"] == one_stats[S.CONVERSATIONS]["rows_total"] > 0
    # an incremental run after a chunked rebuild still appends (app transaction versions increase)
    sim = simulate(SimulationConfig(seed=12, instances=2, days=1, conversations_per_day=5, start=date(2026, 4, 2)))
    write_bronze(lake, sim)
    build_silver(lake, settings=Settings(lake_uri=root))
    after_inc = _snapshot(lake)
    _, full_again = _rebuild(lake, root, 0)
    _assert_same(full_again, after_inc)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=traffic(), perm=st.randoms(use_true_random=False), chunk_rows=st.integers(3, 12))
def test_chunked_full_equals_one_pass_on_random_worlds(world, perm, chunk_rows) -> None:
    webhooks, actions = world
    order = list(range(len(webhooks)))
    perm.shuffle(order)  # arrival order != event order; one receipt every 20 minutes (several days)
    arrivals = [
        (f"r{pos:05d}", T0 + timedelta(minutes=20 * pos), json.dumps(webhooks[i])) for pos, i in enumerate(order)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(root=tmp)
        append_webhooks(lake, webhook_rows(arrivals))
        if actions:
            append_ops(lake, ops_rows(actions))
        _, one = _rebuild(lake, tmp, 0)
        _, chunked = _rebuild(lake, tmp, chunk_rows)
    _assert_same(one, chunked)
