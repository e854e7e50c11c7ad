"""The PostgreSQL baseline as an API: the seed's design served over HTTP, for ``benchmarks.metrics``.

A minimal FastAPI app (its own uvicorn process, like BeaZap's) answering the benchmark's endpoints
on the same paths with the same answer shape as BeaZap's metrics API — rows with drill-down URLs,
totals, the previous period of the same length, ``change_pct`` — computed on request with SQL
``GROUP BY`` over the seed's ``messages``/``conversations`` tables through a pooled psycopg
connection (SQLAlchemy ``QueuePool``, the project's pool; no pre-ping, which favours PostgreSQL).
Messages are filtered by instance through the join with conversations, as the seed's
``get_hourly_volume``. Authentication is a constant-time compare with one static token (no lookup,
which favours PostgreSQL too). Local days are in ``America/Sao_Paulo`` (BeaZap's default zone).

What the seed's schema cannot give is returned as 0/null with the same keys: automated messages,
expired/reopened conversations, business-hours and next-reply clocks (no reply waits), calls (no
calls table). ``BEAZAP_BENCH_PG_URL`` names the database, ``BEAZAP_BENCH_PG_TOKEN`` the token.

    uvicorn benchmarks.metrics_pg_api:create_app --factory
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy import Engine, create_engine

TZ = "America/Sao_Paulo"
ZONE = ZoneInfo(TZ)
FRT_TARGET = 15 * 60
RESOLUTION_TARGET = 24 * 3600
BUCKET_EDGES = (60, 300, 900, 1800, 3600, 14400, 86400)
BUCKET_NAMES = ("<1m", "1-5m", "5-15m", "15-30m", "30-60m", "1-4h", "4-24h", ">24h")

# Messages of one instance in [start, end): the seed's join through conversations.
MESSAGES_OF = (
    "from messages m join conversations c on c.id = m.conversation_id "
    "where c.instance_id = %(inst)s and m.timestamp >= %(start)s and m.timestamp < %(end)s"
)
COUNTS = (
    "count(*) filter (where m.direction = 'inbound') as inbound, "
    "count(*) filter (where m.direction = 'outbound') as outbound, count(*) as total"
)
VOLUME_ROWS = f"""
    select to_char(date_trunc(%(unit)s, m.timestamp at time zone '{TZ}'), %(fmt)s) as bucket,
           date_trunc(%(unit)s, m.timestamp at time zone '{TZ}')::date as bucket_start, {COUNTS}
    {MESSAGES_OF} group by 1, 2 order by 1"""
VOLUME_TOTALS = f"select {COUNTS} {MESSAGES_OF}"
CONVERSATIONS_BY_BUCKET = f"""
    select to_char(date_trunc(%(unit)s, opened_at at time zone '{TZ}'), %(fmt)s), count(*)
    from conversations where instance_id = %(inst)s and opened_at >= %(start)s and opened_at < %(end)s group by 1"""
RESOLVED_BY_BUCKET = f"""
    select to_char(date_trunc(%(unit)s, resolved_at at time zone '{TZ}'), %(fmt)s), count(*)
    from conversations where instance_id = %(inst)s and resolved_at >= %(start)s and resolved_at < %(end)s
    group by 1"""
FRT = "frt"
RES = "res"
# Conversations of one instance opened in [start, end), each clock computed once per row.
OPENED_IN = f"""(
    select *, extract(epoch from first_response_at - opened_at)::float8 as frt,
           extract(epoch from resolved_at - opened_at)::float8 as res, (opened_at at time zone '{TZ}')::date as day
    from conversations where instance_id = %(inst)s and opened_at >= %(start)s and opened_at < %(end)s) x"""
OVERVIEW = f"""
    with m as (select {COUNTS} {MESSAGES_OF}),
    o as (
        select count(*) as opened, avg({FRT}) as frt_mean,
               percentile_cont(0.5) within group (order by {FRT}) as frt_median,
               percentile_cont(0.9) within group (order by {FRT}) as frt_p90,
               percentile_cont(0.5) within group (order by {RES}) as res_median,
               percentile_cont(0.9) within group (order by {RES}) as res_p90,
               100.0 * count(*) filter (where {FRT} <= {FRT_TARGET}) / nullif(count(first_response_at), 0) as frt_pct,
               100.0 * count(*) filter (where {RES} <= {RESOLUTION_TARGET}) / nullif(count(resolved_at), 0)
                   as res_pct
        from {OPENED_IN}),
    r as (select count(*) as resolved from conversations
          where instance_id = %(inst)s and resolved_at >= %(start)s and resolved_at < %(end)s),
    b as (select count(*) as backlog from conversations
          where instance_id = %(inst)s and opened_at < %(end)s and status <> 'expired'
            and (resolved_at is null or resolved_at >= %(end)s))
    select * from m, o, r, b"""


def _clock_sql(expr: str, target: int, done: str) -> str:
    buckets = []
    lower = 0
    for edge in (*BUCKET_EDGES, None):
        upper = f" and {expr} < {edge}" if edge else ""
        buckets.append(f"count(*) filter (where {expr} >= {lower}{upper})")
        lower = edge or 0
    return (
        f"count({expr}), avg({expr}), percentile_cont(0.5) within group (order by {expr}), "
        f"percentile_cont(0.9) within group (order by {expr}), {', '.join(buckets)}, "
        f"count(*) filter (where {expr} <= {target}), count(*) filter (where {expr} > {target}), "
        f"count(*) filter (where {done} is null), sum({expr} - {target}) filter (where {expr} > {target})"
    )


SLA_CLOCKS = f"""
    select {_clock_sql(FRT, FRT_TARGET, "first_response_at")}, {_clock_sql(RES, RESOLUTION_TARGET, "resolved_at")}
    from {OPENED_IN}"""
SLA_DAYS = f"""
    select day, count(*),
           percentile_cont(0.5) within group (order by {FRT}), percentile_cont(0.9) within group (order by {FRT}),
           100.0 * count(*) filter (where {FRT} <= {FRT_TARGET}) / nullif(count(first_response_at), 0),
           percentile_cont(0.5) within group (order by {RES}),
           100.0 * count(*) filter (where {RES} <= {RESOLUTION_TARGET}) / nullif(count(resolved_at), 0)
    from {OPENED_IN} group by 1 order by 1"""
RANKING = f"""
    with a as (
        select assignee_id as id, max(team_id) as team_id, count(*) as assigned,
               count(first_response_at) as first_responses,
               percentile_cont(0.5) within group (order by {FRT}) as frt_median,
               percentile_cont(0.9) within group (order by {FRT}) as frt_p90,
               100.0 * count(*) filter (where {FRT} <= {FRT_TARGET}) / nullif(count(first_response_at), 0) as frt_pct,
               percentile_cont(0.5) within group (order by {RES}) as res_median,
               percentile_cont(0.9) within group (order by {RES}) as res_p90
        from {OPENED_IN} where assignee_id is not null group by 1),
    r as (select assignee_id as id, count(*) as resolved from conversations
          where instance_id = %(inst)s and resolved_at >= %(start)s and resolved_at < %(end)s
            and assignee_id is not null group by 1),
    s as (select m.sender_attendant_id as id, count(*) as sent {MESSAGES_OF}
          and m.sender_attendant_id is not null group by 1)
    select coalesce(a.id, r.id, s.id) as id, a.team_id, coalesce(s.sent, 0), coalesce(a.assigned, 0),
           coalesce(r.resolved, 0), coalesce(a.first_responses, 0), a.frt_median, a.frt_p90, a.frt_pct,
           a.res_median, a.res_p90
    from a full join r on r.id = a.id full join s on s.id = coalesce(a.id, r.id)"""
RANK_KEYS = (
    "id",
    "team_id",
    "messages_sent",
    "conversations_assigned",
    "conversations_resolved",
    "first_responses",
    "frt_median_seconds",
    "frt_p90_seconds",
    "frt_achievement_pct",
    "resolution_median_seconds",
    "resolution_p90_seconds",
)
GRANULARITY = {"hour": ("hour", 'YYYY-MM-DD"T"HH24:00'), "day": ("day", "YYYY-MM-DD"), "month": ("month", "YYYY-MM")}


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZONE)


class Period:
    """A period of local days and the previous one of the same length, as UTC bounds."""

    def __init__(self, start: date, end: date) -> None:
        self.start, self.end = start, end
        days = (end - start).days + 1
        self.prev_start, self.prev_end = start - timedelta(days=days), start - timedelta(days=1)

    def bounds(self, previous: bool = False) -> dict[str, datetime]:
        first, last = (self.prev_start, self.prev_end) if previous else (self.start, self.end)
        return {"start": local_midnight(first), "end": local_midnight(last + timedelta(days=1))}

    def json(self) -> dict[str, Any]:
        return {
            "period": {"from": self.start, "to": self.end},
            "previous_period": {"from": self.prev_start, "to": self.prev_end},
        }


def change_pct(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, float | None]:
    return {
        k: round((v - previous[k]) / previous[k] * 100.0, 2)
        if isinstance(v, int | float) and isinstance(previous.get(k), int | float) and previous[k]
        else None
        for k, v in current.items()
    }


def create_app(url: str | None = None, token: str | None = None) -> FastAPI:
    url = url or os.environ["BEAZAP_BENCH_PG_URL"]
    secret = (token or os.environ["BEAZAP_BENCH_PG_TOKEN"]).encode()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=10, max_overflow=20)
    app = FastAPI(title="seed-style PostgreSQL metrics baseline")

    app.state.token = secret

    @app.get("/v1/metrics/volume")
    def volume(_: Scope, args: Args, granularity: str = "day") -> Response:
        inst, p = args
        unit, fmt = GRANULARITY[granularity]
        with connection(engine) as cur:
            return orjson_response(volume_answer(cur, inst, p, unit, fmt, granularity))

    @app.get("/v1/metrics/overview")
    def overview(_: Scope, args: Args) -> Response:
        inst, p = args
        with connection(engine) as cur:
            current, previous = (overview_figures(cur, inst, p.bounds(prev)) for prev in (False, True))
        body = {"instance_ids": [inst], **p.json(), "current": current, "previous": previous}
        return orjson_response({**body, "change_pct": change_pct(current, previous)})

    @app.get("/v1/metrics/sla")
    def sla(_: Scope, args: Args) -> Response:
        inst, p = args
        with connection(engine) as cur:
            clocks, previous = (sla_clocks(cur, inst, p.bounds(prev)) for prev in (False, True))
            cur.execute(SLA_DAYS, {"inst": inst, **p.bounds()})
            days = cur.fetchall()
        rows = [
            {
                "day": d,
                "conversations": n,
                "frt_median_seconds": fm,
                "frt_p90_seconds": fp,
                "frt_achievement_pct": fa,
                "next_reply_achievement_pct": None,
                "resolution_median_seconds": rm,
                "resolution_achievement_pct": ra,
                "drilldown": drill(inst, d, d),
            }
            for d, n, fm, fp, fa, rm, ra in days
        ]
        return orjson_response({**p.json(), "clocks": clocks, "previous_clocks": previous, "rows": rows})

    @app.get("/v1/metrics/attendants")
    def attendants(_: Scope, args: Args, sort: str = "conversations_resolved") -> Response:
        inst, p = args
        with connection(engine) as cur:
            current, previous = (ranking(cur, inst, p.bounds(prev)) for prev in (False, True))
        ordered = sorted(current.values(), key=lambda r: (r.get(sort) is None, -(r.get(sort) or 0), r["id"]))
        rows = [
            {**r, "rank": i, "previous": previous.get(r["id"], {}), "drilldown": drill(inst, p.start, p.end, r["id"])}
            for i, r in enumerate(ordered, start=1)
        ]
        return orjson_response({**p.json(), "sort": sort, "rows": rows})

    return app


def auth(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """One static bearer token, compared in constant time (no lookup)."""
    given = (authorization or "").removeprefix("Bearer ").encode()
    if not hmac.compare_digest(given, request.app.state.token):
        raise HTTPException(401, "invalid token")


def period(
    instance_id: Annotated[str, Query()], from_: Annotated[date, Query(alias="from")], to: Annotated[date, Query()]
) -> tuple[str, Period]:
    if from_ > to:
        raise HTTPException(422, "'from' must be on or before 'to'")
    return instance_id, Period(from_, to)


Scope = Annotated[None, Depends(auth)]
Args = Annotated[tuple[str, "Period"], Depends(period)]


@contextmanager
def connection(engine: Engine) -> Iterator[Any]:
    """A psycopg cursor on a pooled connection (returned to the pool afterwards)."""
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            yield cur
        raw.commit()
    finally:
        raw.close()


def orjson_response(payload: dict[str, Any]) -> Response:
    return Response(orjson.dumps(payload, default=float, option=orjson.OPT_NON_STR_KEYS), media_type="application/json")


def drill(inst: str, start: date, end: date, attendant: str | None = None, hour: int | None = None) -> str:
    url = f"/v1/conversations/facts?instance_id={inst}&from={start.isoformat()}&to={end.isoformat()}"
    if attendant is not None:
        url += f"&attendant_id={attendant}"
    return url if hour is None else f"{url}&hour={hour}"


def volume_answer(cur: Any, inst: str, p: Period, unit: str, fmt: str, granularity: str) -> dict[str, Any]:
    args = {"inst": inst, "unit": unit, "fmt": fmt, **p.bounds()}
    cur.execute(VOLUME_ROWS, args)
    rows = []
    for bucket, start, inbound, outbound, total in cur.fetchall():
        hour = int(bucket[11:13]) if granularity == "hour" else None
        first = max(start, p.start)
        last = first if unit in ("hour", "day") else min(p.end, _month_end(start))
        row = {"bucket": bucket, "bucket_start": start, "inbound": inbound, "outbound": outbound, "automated": 0}
        rows.append({**row, "total": total, "drilldown": drill(inst, first, last, hour=hour)})
    if granularity != "hour":
        cur.execute(CONVERSATIONS_BY_BUCKET, args)
        opened = dict(cur.fetchall())
        cur.execute(RESOLVED_BY_BUCKET, args)
        resolved = dict(cur.fetchall())
        for r in rows:
            r["conversations_opened"] = opened.get(r["bucket"], 0)
            r["conversations_resolved"] = resolved.get(r["bucket"], 0)
    totals = {k: sum(r[k] for r in rows) for k in ("inbound", "outbound", "automated", "total")}
    cur.execute(VOLUME_TOTALS, {"inst": inst, **p.bounds(previous=True)})
    inbound, outbound, total = cur.fetchone()
    previous = {"inbound": inbound, "outbound": outbound, "automated": 0, "total": total}
    return {
        "granularity": granularity,
        **p.json(),
        "rows": rows,
        "totals": totals,
        "previous_totals": previous,
        "change_pct": change_pct(totals, previous),
    }


def _month_end(start: date) -> date:
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def overview_figures(cur: Any, inst: str, bounds: dict[str, datetime]) -> dict[str, Any]:
    cur.execute(OVERVIEW, {"inst": inst, **bounds})
    (
        inbound,
        outbound,
        _,
        opened,
        frt_mean,
        frt_median,
        frt_p90,
        res_median,
        res_p90,
        frt_pct,
        res_pct,
        resolved,
        backlog,
    ) = cur.fetchone()
    return {
        "messages_inbound": inbound,
        "messages_outbound": outbound,
        "messages_automated": 0,
        "conversations_opened": opened,
        "conversations_resolved": resolved,
        "conversations_expired": 0,
        "conversations_reopened": 0,
        "backlog_end": backlog,
        "frt_mean_seconds": _f(frt_mean),
        "frt_median_seconds": frt_median,
        "frt_p90_seconds": frt_p90,
        "frt_business_median_seconds": None,
        "resolution_median_seconds": res_median,
        "resolution_p90_seconds": res_p90,
        "frt_sla_achievement_pct": _f(frt_pct),
        "next_reply_sla_achievement_pct": None,
        "resolution_sla_achievement_pct": _f(res_pct),
        "calls_offered": 0,
        "calls_missed": 0,
    }


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def sla_clocks(cur: Any, inst: str, bounds: dict[str, datetime]) -> list[dict[str, Any]]:
    cur.execute(SLA_CLOCKS, {"inst": inst, **bounds})
    values = cur.fetchone()
    out = []
    for clock, chunk in (("first_response", values[:16]), ("resolution", values[16:])):
        n, avg, median, p90, *rest = chunk
        buckets, (met, breached, pending, overdue) = rest[:8], rest[8:]
        out.append(
            {
                "clock": clock,
                "basis": "calendar",
                "count": n,
                "mean_seconds": _f(avg),
                "median_seconds": median,
                "p90_seconds": p90,
                "buckets": dict(zip(BUCKET_NAMES, buckets, strict=True)),
                "sla_met": met,
                "sla_breached": breached,
                "sla_pending": pending,
                "achievement_pct": 100.0 * met / (met + breached) if met + breached else None,
                "breached_overdue_seconds": _f(overdue),
            }
        )
    return out


def ranking(cur: Any, inst: str, bounds: dict[str, datetime]) -> dict[str, dict[str, Any]]:
    cur.execute(RANKING, {"inst": inst, **bounds})
    out = {}
    for values in cur.fetchall():
        row = dict(zip(RANK_KEYS, values, strict=True))
        row["frt_achievement_pct"] = _f(row["frt_achievement_pct"])
        out[row["id"]] = row
    return out
