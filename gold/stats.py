"""The one definition of every clock statistic and SLA rule, shared by gold SQL and the metrics read side.

``docs/metrics.md`` § Clocks and § SLA in code. The gold build (``gold.runner.prepare``) and the
metrics serving store (``gold.serving.store``, stored in its DuckDB file) install :data:`MACROS` in
their DuckDB connection, so every ``.sql`` file and every serving query writes the rules by name:

- ``duration_bucket(s)``: the bucket label of a duration (edges :data:`BUCKET_EDGES`);
- ``bucket_counts(s)``: aggregate, the list of counts per bucket (in :data:`BUCKETS` order);
- ``sla_outcome(elapsed, target, stopped, running)``: met / breached / pending (or NULL: not counted);
- ``sla_overdue(elapsed, target)``: seconds past the target;
- ``achievement_pct(met, breached)``: SLA achievement % = met / (met + breached), pending left out;
- ``sla_achievement(outcome)``: aggregate, ``achievement_pct`` over a column of outcomes.

The numpy fast path (``gold.serving.fast``) cannot call DuckDB macros; it reads the same constants
(:data:`BUCKET_EDGES`, :data:`OUTCOME_CODES`) and :func:`achievement_pct` below, and
``tests/test_metrics_fast.py`` pins both paths to the same answers.
"""

from __future__ import annotations

BUCKETS = ("<1m", "1-5m", "5-15m", "15-30m", "30-60m", "1-4h", "4-24h", ">24h")
"""Duration buckets (labels), lower edge included: < 1 min, 1–5, 5–15, 15–30, 30–60 min, 1–4 h, 4–24 h, > 24 h."""
BUCKET_EDGES = (60, 300, 900, 1800, 3600, 14400, 86400)
"""Upper edges in seconds of every bucket but the last."""
BUCKET_COLUMNS = tuple("bucket_" + b.replace("<", "lt_").replace(">", "gt_").replace("-", "_") for b in BUCKETS)
"""Column names of the buckets in ``gold/sla_daily`` (``bucket_lt_1m`` … ``bucket_gt_24h``)."""
QUANTILES = (0.5, 0.9)
"""Median and p90, linear interpolation (DuckDB ``quantile_cont``)."""
OUTCOME_CODES = {"met": 1, "breached": 2, "pending": 3}
"""SLA outcomes as small integers (0 = not counted) in the fast path's arrays."""


def _bounds() -> list[tuple[float | None, float | None]]:
    lows: list[float | None] = [None, *BUCKET_EDGES]
    highs: list[float | None] = [*BUCKET_EDGES, None]
    return list(zip(lows, highs, strict=True))


def _bucket_case() -> str:
    arms = " ".join(f"when s < {hi} then '{label}'" for (_, hi), label in zip(_bounds(), BUCKETS, strict=False) if hi)
    return f"case when s is null then null {arms} else '{BUCKETS[-1]}' end"


def _bucket_counts() -> str:
    counts = []
    for lo, hi in _bounds():
        cond = " and ".join(c for c in (f"s >= {lo}" if lo else "s >= 0", f"s < {hi}" if hi else "") if c)
        counts.append(f"count(*) filter (where {cond})")
    return "[" + ", ".join(counts) + "]"


MACROS = (
    f"create or replace macro duration_bucket(s) as {_bucket_case()}",
    f"create or replace macro bucket_counts(s) as {_bucket_counts()}",
    """create or replace macro sla_outcome(elapsed, target, stopped, running) as
        case when target is null then null
             when stopped then case when elapsed <= target then 'met' else 'breached' end
             when elapsed > target then 'breached'
             when running then 'pending'
        end""",
    "create or replace macro sla_overdue(elapsed, target) as case when elapsed > target then elapsed - target end",
    "create or replace macro achievement_pct(met, breached) as 100.0 * met / nullif(met + breached, 0)",
    """create or replace macro sla_achievement(outcome) as achievement_pct(
        count(*) filter (where outcome = 'met'), count(*) filter (where outcome = 'breached'))""",
)


def install(con: object) -> None:
    """Create :data:`MACROS` in a DuckDB connection."""
    for statement in MACROS:
        con.execute(statement)  # type: ignore[attr-defined]


def achievement_pct(met: int | None, breached: int | None) -> float | None:
    """SLA achievement % = met / (met + breached) — the numpy twin of the ``achievement_pct`` macro."""
    if met is None or breached is None or not met + breached:
        return None
    return 100.0 * met / (met + breached)
