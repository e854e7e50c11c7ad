"""Fast path of the metrics API: gold as per-instance numpy columns, computed with vectorized numpy.

When the serving store is built (``gold.serving.store.build``), :func:`build` copies the columns the
dashboard queries need out of its DuckDB gold into numpy arrays, sorted by instance and day, with
each instance's row range; the store saves them as ``.npy`` files that every worker memory-maps. A
query without team/attendant filters then slices its instances' rows for the day range (binary
search) and aggregates with ``np.bincount`` and sorted quantiles, instead of planning and running
several DuckDB statements (≈ 1–2 ms each).

Each function returns exactly what its SQL twin in ``gold.serving.queries`` returns (same keys, same
order, same values up to float rounding); the SQL path stays for people-filtered queries and is the
reference the tests compare this path with. Quantiles interpolate linearly (DuckDB's
``quantile_cont``); ``NaN`` stands for SQL ``NULL`` in float columns, ``-1`` in code columns.
The definitions — bucket edges, outcome codes, SLA achievement — come from ``gold.stats``, the clocks
and their columns from ``queries.CLOCK_COLUMNS``: nothing here restates a metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import duckdb
import numpy as np

from gold.serving import queries
from gold.serving.queries import BASES, CLOCK_COLUMNS, Filters
from gold.stats import BUCKET_EDGES, BUCKETS, OUTCOME_CODES, QUANTILES, achievement_pct

EPOCH = date(1970, 1, 1)
MET, BREACHED, PENDING = OUTCOME_CODES["met"], OUTCOME_CODES["breached"], OUTCOME_CODES["pending"]
NO_DAY = np.iinfo(np.int32).min


def day_number(d: date) -> int:
    return (d - EPOCH).days


@lru_cache(maxsize=8192)
def iso_day(n: int) -> str:
    return (EPOCH + timedelta(days=n)).isoformat()


@lru_cache(maxsize=8192)
def day_date(n: int) -> date:
    return EPOCH + timedelta(days=n)


@dataclass
class Columns:
    """One table's columns as numpy arrays, rows sorted by (instance, ``day``), per-instance ranges."""

    day: np.ndarray
    cols: dict[str, np.ndarray]
    ranges: dict[str, tuple[int, int]]

    def select(self, instances: Sequence[str], first: date, last: date) -> dict[str, np.ndarray]:
        """The rows of ``instances`` whose day is in ``first..last`` (views when one instance)."""
        lo_day, hi_day = day_number(first), day_number(last)
        parts: list[slice] = []
        for inst in instances:
            lo, hi = self.ranges.get(inst, (0, 0))
            days = self.day[lo:hi]
            a = lo + int(np.searchsorted(days, lo_day, "left"))
            b = lo + int(np.searchsorted(days, hi_day, "right"))
            if b > a:
                parts.append(slice(a, b))
        names = ["day", *self.cols]
        arrays = {"day": self.day, **self.cols}
        if len(parts) == 1:
            return {n: arrays[n][parts[0]] for n in names}
        if not parts:
            return {n: arrays[n][:0] for n in names}
        return {n: np.concatenate([arrays[n][p] for p in parts]) for n in names}


def _load(con: duckdb.DuckDBPyConnection, table: str, day: str, exprs: dict[str, str], where: str = "") -> Columns:
    """Fetch ``exprs`` of ``table`` sorted by instance and ``day`` (its stored order) as numpy."""
    cond = f"where {where}" if where else ""
    select = ", ".join(f"{e} as {n}" for n, e in exprs.items())
    sql = f"select ({day} - date '1970-01-01')::int as day, {select} from {table} {cond} order by instance_id, {day}"
    data = con.execute(sql).fetchnumpy()
    counts = con.execute(f"select instance_id, count(*) from {table} {cond} group by 1 order by 1").fetchall()
    ranges: dict[str, tuple[int, int]] = {}
    offset = 0
    for inst, n in counts:
        ranges[inst] = (offset, offset + n)
        offset += n
    cols = {n: _plain(data[n], n) for n in exprs}
    return Columns(day=np.asarray(data["day"], dtype=np.int32), cols=cols, ranges=ranges)


def _plain(values: Any, name: str) -> np.ndarray:
    """A plain numpy array (the load expressions coalesce every NULL; a mask would be a bug)."""
    if isinstance(values, np.ma.MaskedArray):
        if values.mask.any():
            raise ValueError(f"unexpected NULL in fast-path column {name}")
        values = values.data
    return np.asarray(values)


def _nan(column: str) -> str:
    return f"coalesce({column}::double, 'nan'::double)"


def _outcome(column: str) -> str:
    arms = " ".join(f"when '{name}' then {code}" for name, code in OUTCOME_CODES.items())
    return f"(case {column} {arms} else 0 end)::tinyint"


def _clock_columns(source: tuple[str, ...], values: tuple[str, ...], outcomes: tuple[str, ...]) -> tuple[str, ...]:
    names = [n for c in CLOCK_COLUMNS if c.source in source for n in (getattr(c, k) for k in values) if n is not None]
    return tuple(dict.fromkeys(names + list(outcomes)))


_VALUES = ("calendar", "business", "overdue_calendar", "overdue_business")
_OUTCOMES = ("outcome_calendar", "outcome_business")
# Float and outcome-code columns of the facts and waits arrays: every clock column of CLOCK_COLUMNS,
# plus the policy-basis outcomes/overdue the overview and daily series read.
FACT_VALUES = _clock_columns(("facts", "inbound_facts"), _VALUES, ("frt_overdue_seconds", "resolution_overdue_seconds"))
FACT_OUTCOMES = _clock_columns(("facts", "inbound_facts"), _OUTCOMES, ("frt_sla", "resolution_sla"))
WAIT_VALUES = _clock_columns(("waits",), _VALUES, ())
WAIT_OUTCOMES = _clock_columns(("waits",), _OUTCOMES, ())


@dataclass
class GoldArrays:
    """The numpy copy of gold the fast path reads, plus the id dictionary of its code columns."""

    hourly: Columns
    daily: Columns
    conversations: Columns
    facts: Columns
    waits: Columns
    calls: Columns
    people: Columns
    ids: list[str]


def build(con: duckdb.DuckDBPyConnection) -> GoldArrays:
    """Build the arrays from the store's gold (tables and rollups created by ``gold.serving.store``)."""
    con.execute(
        "create or replace temp table __ids as select row_number() over (order by id)::int - 1 as code, id from "
        "(select distinct id from (select unnest([first_responder_id, first_responder_team_id, assignee_id, "
        "team_id]) as id from gold.conversation_facts union all select unnest([attendant_id, team_id]) "
        "from gold.daily_volume) where id is not null)"
    )
    ids = [r[0] for r in con.execute("select id from __ids order by code").fetchall()]

    def code(column: str) -> str:
        return f"coalesce((select code from __ids where id = {column}), -1)::int"

    inbound = "coalesce(direction = 'inbound', false)::tinyint"
    outbound = "coalesce(direction = 'outbound', false)::tinyint"
    arrays = GoldArrays(
        hourly=_load(
            con,
            "gold.hourly_totals",
            "day",
            {
                "hour": "coalesce(hour, 0)::tinyint",
                "inbound": inbound,
                "outbound": outbound,
                "messages": "coalesce(messages, 0)",
                "automated": "coalesce(automated_messages, 0)",
            },
        ),
        daily=_load(
            con,
            "gold.daily_totals",
            "day",
            {
                "inbound": inbound,
                "outbound": outbound,
                "messages": "coalesce(messages, 0)",
                "automated": "coalesce(automated_messages, 0)",
            },
        ),
        conversations=_load(
            con,
            "gold.daily_conversations",
            "day",
            {
                c: f"coalesce({c}, 0)"
                for c in (
                    "opened",
                    "opened_inbound",
                    "opened_outbound",
                    "resolved",
                    "expired",
                    "abandoned",
                    "reopened",
                    "backlog",
                )
            },
        ),
        facts=_load(
            con,
            "gold.conversation_facts",
            "opened_day",
            {
                "resolved_day": f"coalesce((resolved_day - date '1970-01-01')::int, {NO_DAY})",
                "inbound": "coalesce(origin = 'inbound', false)",
                "has_first_response": "first_response_at is not null",
                "has_resolved": "resolved_at is not null",
                **{c: _nan(c) for c in FACT_VALUES},
                **{c: _outcome(c) for c in FACT_OUTCOMES},
                "next_reply_met": "coalesce(next_reply_met, 0)",
                "next_reply_breached": "coalesce(next_reply_breached, 0)",
                "next_reply_null": "(next_reply_met is null)::int + (next_reply_breached is null)::int * 2",
                "first_responder": code("first_responder_id"),
                "first_responder_team": code("first_responder_team_id"),
                "assignee": code("assignee_id"),
                "team": code("team_id"),
            },
        ),
        waits=_load(
            con,
            "gold.reply_waits",
            "opened_day",
            {**{c: _nan(c) for c in WAIT_VALUES}, **{c: _outcome(c) for c in WAIT_OUTCOMES}},
        ),
        calls=_load(
            con, "gold.calls_daily", "day", {"offered": "coalesce(offered, 0)", "missed": "coalesce(missed, 0)"}
        ),
        people=_load(
            con,
            "(select instance_id, day, attendant_id, team_id, sum(messages)::bigint as messages from gold.daily_volume"
            " where attendant_id is not null or team_id is not null group by all) p",
            "day",
            {"attendant": code("attendant_id"), "team": code("team_id"), "messages": "messages"},
        ),
        ids=ids,
    )
    con.execute("drop table __ids")
    return arrays


def supports(f: Filters) -> bool:
    """Whether the fast path answers these filters (no team/attendant filter)."""
    return not f.people


# --- statistics helpers ----------------------------------------------------------------
def quantiles(values: np.ndarray, qs: Sequence[float]) -> list[float | None]:
    """Linear-interpolated quantiles of the non-NaN values (None when there are none)."""
    valid = values[~np.isnan(values)]
    return sorted_quantiles(np.sort(valid), qs)


def sorted_quantiles(ordered: np.ndarray, qs: Sequence[float]) -> list[float | None]:
    """Linear-interpolated quantiles of sorted values (DuckDB's ``quantile_cont``)."""
    n = len(ordered)
    if not n:
        return [None for _ in qs]
    out: list[float | None] = []
    for q in qs:
        pos = q * (n - 1)
        lo = int(pos)
        a, b = float(ordered[lo]), float(ordered[min(lo + 1, n - 1)])
        out.append(a + (b - a) * (pos - lo))
    return out


def mean(values: np.ndarray) -> float | None:
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if len(valid) else None


def partitioned_quantiles(valid: np.ndarray, qs: Sequence[float]) -> list[float | None]:
    """``sorted_quantiles`` of NaN-free values by partial sort (``np.partition``: linear, not n log n)."""
    n = len(valid)
    if not n:
        return [None for _ in qs]
    positions = [q * (n - 1) for q in qs]
    kth = sorted({k for pos in positions for k in (int(pos), min(int(pos) + 1, n - 1))})
    part = np.partition(valid, kth)
    out: list[float | None] = []
    for pos in positions:
        lo = int(pos)
        a, b = float(part[lo]), float(part[min(lo + 1, n - 1)])
        out.append(a + (b - a) * (pos - lo))
    return out


def grouped_quantiles(groups: np.ndarray, values: np.ndarray, qs: Sequence[float]) -> dict[int, list[float]]:
    """Per group (int key) linear quantiles of its non-NaN values, in one sort."""
    valid = ~np.isnan(values)
    g, v = groups[valid], values[valid]
    if not len(v):
        return {}
    order = np.lexsort((v, g))
    g, v = g[order], v[order]
    keys, starts, counts = np.unique(g, return_index=True, return_counts=True)
    out = []
    for q in qs:
        pos = starts + q * (counts - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.ceil(pos).astype(np.int64)
        out.append(v[lo] + (v[hi] - v[lo]) * (pos - lo))
    return {int(k): [float(o[i]) for o in out] for i, k in enumerate(keys)}


def _period_selections(cols: Columns, f: Filters) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Both periods, per instance split so each part stays sorted by day."""
    cur = cols.select(f.instance_ids, f.start, f.end)
    prev = cols.select(f.instance_ids, f.prev_start, f.prev_end)
    return [("current", cur), ("previous", prev)]


# --- overview ----------------------------------------------------------------
def overview(g: GoldArrays, f: Filters) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"current": {}, "previous": {}}
    ends = {"current": day_number(f.end), "previous": day_number(f.prev_end)}
    for period, d in _period_selections(g.daily, f):
        if len(d["day"]):
            msgs = d["messages"]
            out[period].update(
                messages_inbound=int(msgs[d["inbound"] == 1].sum()),
                messages_outbound=int(msgs[d["outbound"] == 1].sum()),
                messages_automated=int(d["automated"].sum()),
            )
    for period, c in _period_selections(g.conversations, f):
        if len(c["day"]):
            out[period].update(
                conversations_opened=int(c["opened"].sum()),
                conversations_opened_inbound=int(c["opened_inbound"].sum()),
                conversations_opened_outbound=int(c["opened_outbound"].sum()),
                conversations_resolved=int(c["resolved"].sum()),
                conversations_expired=int(c["expired"].sum()),
                conversations_abandoned=int(c["abandoned"].sum()),
                conversations_reopened=int(c["reopened"].sum()),
                backlog_end=int(c["backlog"][c["day"] == ends[period]].sum()),
            )
    for period, x in _period_selections(g.facts, f):
        if len(x["day"]):
            out[period].update(_frt_stats(x))
    for period, c in _period_selections(g.calls, f):
        if len(c["day"]):
            out[period].update(calls_offered=int(c["offered"].sum()), calls_missed=int(c["missed"].sum()))
    return out


def _frt_stats(x: dict[str, np.ndarray]) -> dict[str, Any]:
    frt_median, frt_p90 = quantiles(x["frt_seconds"], (0.5, 0.9))
    res_median, res_p90 = quantiles(x["resolution_seconds"], (0.5, 0.9))
    frt_met, frt_breached = int((x["frt_sla"] == MET).sum()), int((x["frt_sla"] == BREACHED).sum())
    res_met, res_breached = int((x["resolution_sla"] == MET).sum()), int((x["resolution_sla"] == BREACHED).sum())
    nr_met, nr_breached = _next_reply_sums(x)
    return {
        "frt_mean_seconds": mean(x["frt_seconds"]),
        "frt_median_seconds": frt_median,
        "frt_p90_seconds": frt_p90,
        "frt_business_median_seconds": quantiles(x["frt_business_seconds"], (0.5,))[0],
        "resolution_median_seconds": res_median,
        "resolution_p90_seconds": res_p90,
        "frt_sla_achievement_pct": achievement_pct(frt_met, frt_breached),
        "next_reply_sla_achievement_pct": achievement_pct(nr_met, nr_breached),
        "resolution_sla_achievement_pct": achievement_pct(res_met, res_breached),
    }


def _next_reply_sums(x: dict[str, np.ndarray]) -> tuple[int | None, int | None]:
    """SQL ``sum(next_reply_met)``, ``sum(next_reply_breached)`` (NULL when every value is NULL)."""
    nulls = x["next_reply_null"]
    met = int(x["next_reply_met"].sum()) if ((nulls & 1) == 0).any() else None
    breached = int(x["next_reply_breached"].sum()) if ((nulls & 2) == 0).any() else None
    return met, breached


# --- volume ----------------------------------------------------------------
# The daily_conversations columns behind ``queries.CONVERSATION_BUCKET_FIGURES``, in the same order.
CONVERSATION_BUCKET_COLUMNS = ("opened", "opened_inbound", "opened_outbound", "resolved")


def supports_volume(f: Filters, by: str) -> bool:
    return supports(f) and by == "none"


def volume(g: GoldArrays, f: Filters, granularity: str, by: str) -> dict[str, Any]:
    first, last = day_number(f.start), day_number(f.end)
    if granularity == "hour":
        h = g.hourly.select(f.instance_ids, f.start, f.end)
        keys = (h["day"].astype(np.int64) - first) * 24 + h["hour"]
        size = (last - first + 1) * 24
        series = _buckets(keys, h, size, lambda k: (f"{iso_day(first + k // 24)}T{k % 24:02d}:00", first + k // 24))
    else:
        d = g.daily.select(f.instance_ids, f.start, f.end)
        labels, starts, index = _calendar_buckets(first, last, granularity)
        series = _buckets(index[d["day"] - first], d, len(labels), lambda k: (labels[k], starts[k]))
        c = g.conversations.select(f.instance_ids, f.start, f.end)
        ckeys = index[c["day"] - first]
        sums = {
            name: np.bincount(ckeys, weights=c[column], minlength=len(labels)).astype(np.int64)
            for name, column in zip(queries.CONVERSATION_BUCKET_FIGURES, CONVERSATION_BUCKET_COLUMNS, strict=True)
        }
        for row in series:
            k = row.pop("_k")
            row.update({name: int(values[k]) for name, values in sums.items()})
    for row in series:
        row.pop("_k", None)
    totals: dict[str, dict[str, int]] = {}
    for period, d in _period_selections(g.daily, f):
        if len(d["day"]):
            msgs = d["messages"]
            totals[period] = {
                "inbound": int(msgs[d["inbound"] == 1].sum()),
                "outbound": int(msgs[d["outbound"] == 1].sum()),
                "automated": int(d["automated"].sum()),
                "total": int(msgs.sum()),
            }
    return {"rows": series, "totals": totals.get("current", {}), "previous_totals": totals.get("previous", {})}


def _buckets(keys: np.ndarray, d: dict[str, np.ndarray], size: int, label: Any) -> list[dict[str, Any]]:
    """Rows of the buckets present in ``keys`` (ordered by key) with inbound/outbound/automated/total."""
    msgs = d["messages"].astype(np.float64)
    present = np.bincount(keys, minlength=size) > 0
    inbound = np.bincount(keys, weights=msgs * d["inbound"], minlength=size).astype(np.int64)
    outbound = np.bincount(keys, weights=msgs * d["outbound"], minlength=size).astype(np.int64)
    automated = np.bincount(keys, weights=d["automated"], minlength=size).astype(np.int64)
    total = np.bincount(keys, weights=msgs, minlength=size).astype(np.int64)
    rows = []
    for k in np.flatnonzero(present).tolist():
        bucket, start = label(k)
        rows.append(
            {
                "bucket": bucket,
                "bucket_start": day_date(start),
                "inbound": int(inbound[k]),
                "outbound": int(outbound[k]),
                "automated": int(automated[k]),
                "total": int(total[k]),
                "_k": k,
            }
        )
    return rows


@lru_cache(maxsize=512)
def _calendar_buckets(first: int, last: int, granularity: str) -> tuple[list[str], list[int], np.ndarray]:
    """Bucket labels, bucket start days and the day → bucket index of ``first..last`` (memoized)."""
    labels: list[str] = []
    starts: list[int] = []
    index = np.empty(last - first + 1, dtype=np.int64)
    for n in range(first, last + 1):
        d = day_date(n)
        if granularity == "day":
            label, start = d.isoformat(), n
        elif granularity == "week":
            iso = d.isocalendar()
            label, start = f"{iso.year}-W{iso.week:02d}", n - d.weekday()
        else:
            label, start = f"{d.year}-{d.month:02d}", day_number(d.replace(day=1))
        if not labels or labels[-1] != label:
            labels.append(label)
            starts.append(start)
        index[n - first] = len(labels) - 1
    return labels, starts, index


# --- SLA ----------------------------------------------------------------
BUCKET_LOWER = np.asarray((0, *BUCKET_EDGES), dtype=np.float64)


def _clock_stats(
    clock: str, basis: str, values: np.ndarray, outcome: np.ndarray | None, overdue: Any
) -> dict[str, Any]:
    valid = values[~np.isnan(values)]
    n = len(valid)
    median, p90 = partitioned_quantiles(valid, QUANTILES)
    # bucket i holds lower[i] <= v < lower[i + 1]; the SQL buckets start at 0 (negative values: none)
    counts = np.bincount(np.searchsorted(BUCKET_LOWER, valid, "right"), minlength=len(BUCKET_LOWER) + 1)[1:].tolist()
    met = breached = pending = 0
    overdue_total = None
    if outcome is not None:
        counts_by_code = np.bincount(outcome, minlength=max(OUTCOME_CODES.values()) + 1)
        met, breached, pending = (int(counts_by_code[c]) for c in (MET, BREACHED, PENDING))
        if breached:
            od = overdue[outcome == BREACHED]
            od = od[~np.isnan(od)]
            overdue_total = float(od.sum()) if len(od) else None
    return {
        "clock": clock,
        "basis": basis,
        "count": n,
        "mean_seconds": float(valid.mean()) if n else None,
        "median_seconds": median,
        "p90_seconds": p90,
        "buckets": dict(zip(BUCKETS, counts, strict=True)),
        "sla_met": met,
        "sla_breached": breached,
        "sla_pending": pending,
        "achievement_pct": achievement_pct(met, breached),
        "breached_overdue_seconds": overdue_total,
    }


def _clocks(fp: dict[str, np.ndarray], wp: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Every clock of ``CLOCK_COLUMNS`` on both bases, each basis with its own SLA outcomes."""
    inbound = fp["inbound"]
    masked = {k for c in CLOCK_COLUMNS if c.source == "inbound_facts" for k in c[2:] if k}
    sources = {"inbound_facts": {k: fp[k][inbound] for k in masked}, "waits": wp, "facts": fp}
    out = []
    for c in CLOCK_COLUMNS:
        t = sources[c.source]
        for basis in BASES:
            outcome, overdue = getattr(c, f"outcome_{basis}"), getattr(c, f"overdue_{basis}")
            oc = t[outcome] if outcome else None
            od = t[overdue] if overdue else None
            out.append(_clock_stats(c.name, basis, t[getattr(c, basis)], oc, od))
    return out


def sla(g: GoldArrays, f: Filters) -> dict[str, Any]:
    facts = dict(_period_selections(g.facts, f))
    waits = dict(_period_selections(g.waits, f))
    cur = facts["current"]
    return {
        "clocks": _clocks(cur, waits["current"]),
        "previous_clocks": _clocks(facts["previous"], waits["previous"]),
        "rows": _sla_days(cur),
    }


def _sla_days(x: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    days, inverse = np.unique(x["day"], return_inverse=True)
    if not len(days):
        return []
    n = len(days)

    def count(mask: np.ndarray) -> list[int]:
        return np.bincount(inverse[mask], minlength=n).tolist()

    def total(values: np.ndarray) -> list[int]:
        return np.bincount(inverse, weights=values, minlength=n).astype(np.int64).tolist()

    conversations = np.bincount(inverse, minlength=n).tolist()
    frt_q = grouped_quantiles(inverse, x["frt_seconds"], (0.5, 0.9))
    res_q = grouped_quantiles(inverse, x["resolution_seconds"], (0.5,))
    frt_met, frt_breached = count(x["frt_sla"] == MET), count(x["frt_sla"] == BREACHED)
    res_met, res_breached = count(x["resolution_sla"] == MET), count(x["resolution_sla"] == BREACHED)
    nr_met, nr_breached = total(x["next_reply_met"]), total(x["next_reply_breached"])
    nr_met_any = count((x["next_reply_null"] & 1) == 0)
    nr_breached_any = count((x["next_reply_null"] & 2) == 0)
    rows = []
    for i, d in enumerate(days.tolist()):
        fq = frt_q.get(i, [None, None])
        nr_ok = nr_met_any[i] and nr_breached_any[i]
        rows.append(
            {
                "day": day_date(d),
                "conversations": conversations[i],
                "frt_median_seconds": fq[0],
                "frt_p90_seconds": fq[1],
                "frt_achievement_pct": achievement_pct(frt_met[i], frt_breached[i]),
                "next_reply_achievement_pct": achievement_pct(nr_met[i], nr_breached[i]) if nr_ok else None,
                "resolution_median_seconds": res_q.get(i, [None])[0],
                "resolution_achievement_pct": achievement_pct(res_met[i], res_breached[i]),
            }
        )
    return rows


# --- attendant / team ranking ----------------------------------------------------------------
def performance(g: GoldArrays, f: Filters, dimension: str, sort: str) -> dict[str, Any]:
    """Attendant or team ranking with previous-period values (as ``queries.performance``)."""
    attendant = dimension == "attendant"
    if attendant:
        msg_key, frt_key, res_key = "attendant", "first_responder", "assignee"
    else:
        msg_key, frt_key, res_key = "team", "first_responder_team", "team"
    periods: dict[str, dict[int, dict[str, Any]]] = {"current": {}, "previous": {}}
    for period, p in _period_selections(g.people, f):
        keys = p[msg_key]
        keep = keys >= 0
        for k, msgs, team in _grouped_sums(keys[keep], p["messages"][keep], p["team"][keep]):
            row = periods[period].setdefault(k, {})
            row["team_id"] = (g.ids[team] if team >= 0 else None) if attendant else None
            row["messages_sent"] = msgs
    for period, x in _period_selections(g.facts, f):
        _frt_by(periods[period], x, frt_key)
        _assigned_by(periods[period], x, res_key)
    # Resolved in either period, whenever opened (conversations open before they resolve).
    _resolved_by(periods, g.facts.select(f.instance_ids, date.min, f.end), res_key, f)
    defaults = queries.RANKING_DEFAULTS
    current = {g.ids[k]: {**defaults, **v, "id": g.ids[k]} for k, v in periods["current"].items()}
    previous = {g.ids[k]: {**defaults, **v, "id": g.ids[k]} for k, v in periods["previous"].items()}
    return queries.ranked(current, previous, sort)


def _grouped_sums(keys: np.ndarray, values: np.ndarray, team: np.ndarray) -> list[tuple[int, int, int]]:
    """(key, sum of values, max team code) per distinct key."""
    if not len(keys):
        return []
    uniq, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=values.astype(np.float64), minlength=len(uniq)).astype(np.int64)
    teams = np.full(len(uniq), -1, dtype=np.int64)
    np.maximum.at(teams, inverse, team)
    return list(zip(uniq.tolist(), sums.tolist(), teams.tolist(), strict=True))


def _frt_by(rows: dict[int, dict[str, Any]], x: dict[str, np.ndarray], key: str) -> None:
    keep = x["has_first_response"] & (x[key] >= 0)
    keys = x[key][keep]
    if not len(keys):
        return
    uniq, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(uniq)).tolist()
    sla = x["frt_sla"][keep]
    met = np.bincount(inverse[sla == MET], minlength=len(uniq)).tolist()
    breached = np.bincount(inverse[sla == BREACHED], minlength=len(uniq)).tolist()
    q = grouped_quantiles(inverse, x["frt_seconds"][keep], (0.5, 0.9))
    for i, k in enumerate(uniq.tolist()):
        median, p90 = q.get(i, [None, None])
        rows.setdefault(k, {}).update(
            first_responses=counts[i],
            frt_median_seconds=median,
            frt_p90_seconds=p90,
            frt_achievement_pct=achievement_pct(met[i], breached[i]),
        )


def _assigned_by(rows: dict[int, dict[str, Any]], x: dict[str, np.ndarray], key: str) -> None:
    keep = x[key] >= 0
    keys = x[key][keep]
    if not len(keys):
        return
    uniq, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(uniq)).tolist()
    q = grouped_quantiles(inverse, x["resolution_seconds"][keep], (0.5, 0.9))
    for i, k in enumerate(uniq.tolist()):
        median, p90 = q.get(i, [None, None])
        rows.setdefault(k, {}).update(
            conversations_assigned=counts[i], resolution_median_seconds=median, resolution_p90_seconds=p90
        )


def _resolved_by(periods: dict[str, dict[int, dict[str, Any]]], x: dict[str, np.ndarray], key: str, f: Filters) -> None:
    start, prev_start, end = day_number(f.start), day_number(f.prev_start), day_number(f.end)
    rd = x["resolved_day"]
    for period, lo, hi in (("current", start, end), ("previous", prev_start, start - 1)):
        keep = x["has_resolved"] & (rd >= lo) & (rd <= hi) & (x[key] >= 0)
        keys, counts = np.unique(x[key][keep], return_counts=True)
        for k, n in zip(keys.tolist(), counts.tolist(), strict=True):
            periods[period].setdefault(k, {})["conversations_resolved"] = n
