"""gold/stats.py: the SQL macros and their numpy-side twins give the same answers (bucket edges,
SLA outcome rule, achievement %)."""

from __future__ import annotations

import duckdb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gold.serving.fast import BUCKET_LOWER
from gold.stats import BUCKET_EDGES, BUCKETS, achievement_pct, install


def connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    install(con)
    return con


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=200_000, allow_nan=False), min_size=1, max_size=40))
def test_bucket_macros_and_numpy_buckets_agree(values: list[float]) -> None:
    con = connection()
    con.execute("create table t (s double)")
    con.executemany("insert into t values (?)", [[v] for v in values])
    counts = con.execute("select bucket_counts(s) from t").fetchone()[0]
    labels = dict(con.execute("select duration_bucket(s), count(*) from t group by 1").fetchall())
    assert counts == [labels.get(b, 0) for b in BUCKETS]
    numpy_counts = np.bincount(np.searchsorted(BUCKET_LOWER, np.asarray(values), "right"), minlength=9)[1:]
    assert counts == numpy_counts.tolist()
    # every edge starts the next bucket
    assert con.execute(f"select list(duration_bucket(e)) from unnest({list(BUCKET_EDGES)}) x(e)").fetchone()[0] == list(
        BUCKETS[1:]
    )


CON = connection()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 50), st.integers(0, 50))
def test_achievement_macro_and_function_agree(met: int, breached: int) -> None:
    got = CON.execute("select achievement_pct(?, ?)", [met, breached]).fetchone()[0]
    assert got == achievement_pct(met, breached)
    assert got is None if met + breached == 0 else got == 100.0 * met / (met + breached)


def test_sla_outcome_rule() -> None:
    con = connection()
    cases = [
        # elapsed, target, stopped, running -> outcome (docs/metrics.md § SLA)
        ((100, 900, True, False), "met"),
        ((900, 900, True, False), "met"),
        ((901, 900, True, False), "breached"),
        ((1000, 900, False, True), "breached"),
        ((100, 900, False, True), "pending"),
        ((100, 900, False, False), None),  # stopped without a response, within the target: not counted
        ((1000, None, True, False), None),  # no target: not measured
    ]
    for args, want in cases:
        assert con.execute("select sla_outcome(?, ?, ?, ?)", list(args)).fetchone()[0] == want
