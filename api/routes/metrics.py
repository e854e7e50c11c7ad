"""Metrics API: overview, volume, message activity and contacts, heatmap, SLA, attendants, teams, calls
and conversation facts.

This module only parses parameters and shapes HTTP answers (JSON / CSV); the figures come from the
metrics read side in ``gold.serving``. Every endpoint reads gold (the serving store shared by the
node's workers: a read-only DuckDB file and memory-mapped arrays, ``gold.serving.reader.GoldReader``),
restricted to the caller's instances (another tenant's instance id answers 404), for a period of
local dates ``from``..``to`` (default: the last 30 days) plus the previous period of the same length
for comparison. Filters are multi-select: repeat ``instance_id``, ``team_id``, ``attendant_id``.
Rows carry a ``drilldown`` URL to the conversations behind them. Tables are exported as CSV with
``Accept: text/csv``. Summary answers are cached (``api.cache``) under the gold version. When the
period holds no data, summaries carry ``no_data`` with the first and last day that do.

Queries without team/attendant filters are computed by ``gold.serving.fast`` (numpy arrays of the
serving store); the others by the SQL of ``gold.serving.queries``. Both give the same answers.
"""

from __future__ import annotations

import base64
import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import Response

from api.auth import Scope, allowed_instances
from api.cache import MetricsCache, cache_from_settings, make_key
from api.routes.metrics_models import (
    ActivityResponse,
    CallsResponse,
    FactsPage,
    HeatmapResponse,
    OverviewFigures,
    OverviewResponse,
    PerformanceResponse,
    SlaResponse,
    VolumeResponse,
)
from core.settings import Settings, get_settings
from gold.serving import fast
from gold.serving import queries as q
from gold.serving.reader import GoldReader
from storage.lake import Lake

router = APIRouter(tags=["metrics"])
MIN_DATE, MAX_DATE = date(1970, 1, 1), date(9000, 12, 31)

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}, "example": "day,offered,missed\n2026-03-02,4,1\n"}}},
    404: {"description": "Unknown instance (or another tenant's)", "content": {"application/json": {}}},
    422: {"description": "Invalid filters", "content": {"application/json": {}}},
}
ERRORS: dict[int | str, dict[str, Any]] = {k: v for k, v in CSV_RESPONSE.items() if k != 200}


# --- shared dependencies ------------------------------------------------------------------------------------------
def _settings(request: Request) -> Settings:
    return getattr(request.app.state, "settings", None) or get_settings()


async def get_reader(request: Request) -> GoldReader:
    reader = getattr(request.app.state, "gold_reader", None)
    if reader is None:
        settings = _settings(request)
        reader = GoldReader(Lake.from_settings(settings), refresh_seconds=settings.gold_refresh_seconds)
        request.app.state.gold_reader = reader
    return reader


async def get_cache(request: Request) -> MetricsCache:
    cache = getattr(request.app.state, "metrics_cache", None)
    if cache is None:
        cache = cache_from_settings(_settings(request))
        request.app.state.metrics_cache = cache
    return cache


async def get_filters(
    request: Request,
    scope: Scope,
    instance_id: Annotated[
        list[str] | None, Query(description="Instance id(s); repeat for several. Default: all of yours.")
    ] = None,
    from_: Annotated[
        date | None, Query(alias="from", description="First local day (instance time zone). Default: to − 29 days.")
    ] = None,
    to: Annotated[date | None, Query(description="Last local day, inclusive. Default: today (UTC).")] = None,
    team_id: Annotated[list[str] | None, Query(description="Team id(s); repeat for several.")] = None,
    attendant_id: Annotated[list[str] | None, Query(description="Attendant id(s); repeat for several.")] = None,
) -> q.Filters:
    instances = allowed_instances(scope, instance_id)
    for given in (from_, to):
        if given is not None and not (MIN_DATE <= given <= MAX_DATE):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"dates must be between {MIN_DATE} and {MAX_DATE}"
            )
    end = to or datetime.now(UTC).date()
    start = from_ or end - timedelta(days=29)
    if start > end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'from' must be on or before 'to'")
    span = (end - start).days + 1
    max_span = _settings(request).metrics_max_span_days
    if span > max_span:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"the range spans {span} days; the maximum is {max_span}"
        )
    return q.Filters(
        instance_ids=instances,
        start=start,
        end=end,
        team_ids=sorted({t for t in team_id or [] if t}),
        attendant_ids=sorted({a for a in attendant_id or [] if a}),
    )


FiltersDep = Annotated[q.Filters, Depends(get_filters)]
ReaderDep = Annotated[GoldReader, Depends(get_reader)]
CacheDep = Annotated[MetricsCache, Depends(get_cache)]


def _periods(f: q.Filters, reader: GoldReader) -> dict[str, Any]:
    """The period, the previous period and — when the period holds no data — the ``no_data`` notice."""
    out: dict[str, Any] = {
        "period": {"from": f.start, "to": f.end},
        "previous_period": {"from": f.prev_start, "to": f.prev_end},
    }
    span = reader.data_days(f.instance_ids)
    if span is None or span[1] < f.start or span[0] > f.end:
        out["no_data"] = no_data_notice(f, span)
    return out


def no_data_notice(f: q.Filters, span: tuple[date, date] | None) -> dict[str, Any]:
    """What an empty period answers: the first and last day with data, in English and Portuguese."""
    window = f"{f.start}..{f.end}"
    if span is None:
        return {
            "message": f"No data in {window}: nothing has been built for these instances yet.",
            "message_pt": f"Sem dados em {window}: nada foi processado para estas instâncias ainda.",
            "first_day": None,
            "last_day": None,
        }
    first, last = span
    return {
        "message": f"No data in {window}; data exists from {first} to {last}.",
        "message_pt": f"Sem dados em {window}; há dados de {first} a {last}.",
        "first_day": first,
        "last_day": last,
    }


def _filter_params(f: q.Filters) -> dict[str, Any]:
    return {
        "instances": f.instance_ids,
        "from": f.start.isoformat(),
        "to": f.end.isoformat(),
        "teams": f.team_ids,
        "attendants": f.attendant_ids,
    }


def drilldown(f: q.Filters, start: date | None = None, end: date | None = None, **extra: Any) -> str:
    """URL of the conversations behind a bucket (ISO dates need no escaping; other values are encoded)."""
    base = _drill_base(f)
    tail = f"from={(start or f.start).isoformat()}&to={(end or f.end).isoformat()}"
    for key, value in extra.items():
        if value is not None:
            tail += f"&{key}={value}" if type(value) is int else "&" + urlencode([(key, value)])
    return f"{base}&{tail}" if base else f"/v1/conversations/facts?{tail}"


_DRILL_CACHE: dict[tuple, str] = {}


def _drill_base(f: q.Filters) -> str:
    """The part of a drill-down URL shared by every row of one answer (memoized per filter set)."""
    key = (tuple(f.instance_ids), tuple(f.team_ids), tuple(f.attendant_ids))
    base = _DRILL_CACHE.get(key)
    if base is None:
        params: list[tuple[str, Any]] = [("instance_id", i) for i in f.instance_ids]
        params += [("team_id", t) for t in f.team_ids] + [("attendant_id", a) for a in f.attendant_ids]
        base = "/v1/conversations/facts?" + urlencode(params) if params else ""
        if len(_DRILL_CACHE) > 1024:
            _DRILL_CACHE.clear()
        _DRILL_CACHE[key] = base
    return base


def _clean(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _cached(cache: MetricsCache, reader: GoldReader, endpoint: str, params: dict[str, Any], compute: Any) -> Any:
    """The cached answer, or ``compute()`` stored under the gold fingerprint (computes return NaN-free values)."""
    key = make_key(getattr(cache, "prefix", "beazap:metrics"), endpoint, params, reader.fingerprint)
    hit = cache.get(key)
    if hit is not None:
        return hit
    value = compute()
    cache.set(key, value)  # Redis serializes to JSON; in-process keeps the (never mutated) object
    return value


def json_response(payload: dict[str, Any]) -> Response:
    """Serialize with orjson directly (the payload is built to the response model; schemathesis checks it)."""
    return Response(orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS), media_type="application/json")


def wants_csv(request: Request) -> bool:
    return "text/csv" in request.headers.get("accept", "").lower()


def csv_response(rows: list[dict[str, Any]], filename: str) -> Response:
    buffer = io.StringIO()
    flat = [{k: v for k, v in r.items() if not isinstance(v, dict)} for r in rows]
    columns: list[str] = []
    for r in flat:
        columns += [k for k in r if k not in columns]
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(flat)
    return Response(
        content=buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


# --- endpoints ------------------------------------------------------------------------------------------------------
@router.get("/v1/metrics/overview", response_model=OverviewResponse, responses=ERRORS)
def get_overview(f: FiltersDep, reader: ReaderDep, cache: CacheDep) -> Any:
    """Headline figures for the period and the previous period of the same length."""

    def compute() -> dict[str, Any]:
        if fast.supports(f):
            data = fast.overview(reader.arrays(), f)
        else:
            with reader.cursor() as con:
                data = _clean(q.overview(con, f))
        return {"current": data["current"], "previous": data["previous"]}

    data = _cached(cache, reader, "overview", _filter_params(f), compute)
    current = OverviewFigures(**data["current"]).model_dump()
    previous = OverviewFigures(**data["previous"]).model_dump()
    return json_response(
        {
            "instance_ids": f.instance_ids,
            **_periods(f, reader),
            "current": current,
            "previous": previous,
            "change_pct": q.change_pct(current, previous),
        }
    )


@router.get("/v1/metrics/volume", response_model=VolumeResponse, responses=CSV_RESPONSE)
def get_volume(
    request: Request,
    f: FiltersDep,
    reader: ReaderDep,
    cache: CacheDep,
    granularity: Annotated[Literal["hour", "day", "week", "month"], Query(description="Bucket size.")] = "day",
    by: Annotated[
        Literal["none", "instance", "kind", "chat_type"], Query(description="Split each bucket by this.")
    ] = "none",
) -> Any:
    """Messages per bucket (instance time zone) by direction, with conversations opened/resolved per day+."""

    def compute() -> dict[str, Any]:
        if fast.supports_volume(f, by):
            data = fast.volume(reader.arrays(), f, granularity, by)
        else:
            with reader.cursor() as con:
                data = _clean(q.volume(con, f, granularity, by))
        _link_volume_rows(data["rows"], f, granularity)  # drill-down URLs are part of the cached answer
        return data

    data = _cached(cache, reader, "volume", {**_filter_params(f), "g": granularity, "by": by}, compute)
    rows = data["rows"]
    if wants_csv(request):
        return csv_response(rows, f"volume_{granularity}")
    totals = {"inbound": 0, "outbound": 0, "automated": 0, "total": 0, **(data["totals"] or {})}
    previous = {"inbound": 0, "outbound": 0, "automated": 0, "total": 0, **(data["previous_totals"] or {})}
    return json_response(
        {
            "granularity": granularity,
            **_periods(f, reader),
            "rows": rows,
            "totals": totals,
            "previous_totals": previous,
            "change_pct": q.change_pct(totals, previous),
        }
    )


@router.get("/v1/metrics/activity", response_model=ActivityResponse, responses=CSV_RESPONSE)
def get_activity(
    request: Request,
    f: FiltersDep,
    reader: ReaderDep,
    cache: CacheDep,
    granularity: Annotated[Literal["day", "week", "month"], Query(description="Bucket size.")] = "day",
) -> Any:
    """Messages edited and revoked, reactions, media by type, and distinct contacts (new vs returning)
    per bucket (instance time zone), with the period's and the previous period's totals."""
    if f.people:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "activity figures are per instance; team_id and attendant_id do not apply",
        )

    def compute() -> dict[str, Any]:
        with reader.cursor() as con:
            return _clean(q.activity(con, f, granularity))

    data = _cached(cache, reader, "activity", {**_filter_params(f), "g": granularity}, compute)
    rows = [{**r, "bucket_start": _as_date(r["bucket_start"])} for r in data["rows"]]
    if wants_csv(request):
        return csv_response(rows, f"activity_{granularity}")
    return json_response(
        {
            "granularity": granularity,
            **_periods(f, reader),
            "rows": rows,
            "totals": data["totals"],
            "previous_totals": data["previous_totals"],
            "change_pct": q.change_pct(data["totals"], data["previous_totals"]),
        }
    )


def _as_date(value: Any) -> date:
    """A date from gold (a date) or from the JSON cache (its ISO string)."""
    return value if type(value) is date else date.fromisoformat(str(value)[:10])


def _bucket_end(start: date, granularity: str) -> date:
    if granularity == "week":
        return start + timedelta(days=6)
    if granularity == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return start


def _link_volume_rows(rows: list[dict[str, Any]], f: q.Filters, granularity: str) -> None:
    """Give each (freshly computed) volume row its date and the drill-down URL of its bucket, clipped to
    the period. The hourly case — the largest answer — is plain string building."""
    base = _drill_base(f)
    prefix = f"{base}&" if base else "/v1/conversations/facts?"
    for r in rows:
        start = _as_date(r["bucket_start"])
        r["bucket_start"] = start
        if granularity == "hour" and not r.get("instance_id"):
            day = start.isoformat()  # an hour's day is inside the period: no clipping
            r["drilldown"] = f"{prefix}from={day}&to={day}&hour={int(r['bucket'][11:13])}"
            continue
        end = _bucket_end(start, granularity)
        hour = int(r["bucket"][11:13]) if granularity == "hour" else None
        sub = q.Filters([r["instance_id"]], f.start, f.end, f.team_ids, f.attendant_ids) if r.get("instance_id") else f
        r["drilldown"] = drilldown(sub, max(start, f.start), min(end, f.end), hour=hour)


@router.get("/v1/metrics/heatmap", response_model=HeatmapResponse, responses=CSV_RESPONSE)
def get_heatmap(request: Request, f: FiltersDep, reader: ReaderDep, cache: CacheDep) -> Any:
    """Inbound messages and conversations opened by ISO weekday × hour (instance time zone)."""

    def compute() -> dict[str, Any]:
        with reader.cursor() as con:
            return _clean(q.heatmap(con, f))

    data = _cached(cache, reader, "heatmap", _filter_params(f), compute)
    cells = [{**c, "drilldown": drilldown(f, weekday=c["weekday"], hour=c["hour"])} for c in data["cells"]]
    if wants_csv(request):
        return csv_response(cells, "heatmap")
    totals = {"inbound_messages": 0, "conversations_opened": 0, **(data["totals"] or {})}
    previous = {"inbound_messages": 0, "conversations_opened": 0, **(data["previous_totals"] or {})}
    return json_response(
        {
            **_periods(f, reader),
            "cells": cells,
            "totals": totals,
            "previous_totals": previous,
            "change_pct": q.change_pct(totals, previous),
        }
    )


@router.get("/v1/metrics/sla", response_model=SlaResponse, responses=CSV_RESPONSE)
def get_sla(request: Request, f: FiltersDep, reader: ReaderDep, cache: CacheDep) -> Any:
    """Every clock (FRT, next reply, resolution, handling) in calendar and business time, with SLA
    achievement; plus a daily series by the day conversations opened."""

    def compute() -> dict[str, Any]:
        if fast.supports(f):
            return fast.sla(reader.arrays(), f)
        with reader.cursor() as con:
            return _clean(q.sla(con, f))

    data = _cached(cache, reader, "sla", _filter_params(f), compute)
    rows = [{**r, "drilldown": drilldown(f, r_day(r), r_day(r))} for r in data["rows"]]
    if wants_csv(request):
        return csv_response(rows, "sla_daily")
    return json_response(
        {**_periods(f, reader), "clocks": data["clocks"], "previous_clocks": data["previous_clocks"], "rows": rows}
    )


def r_day(row: dict[str, Any]) -> date:
    return _as_date(row["day"])


Sort = Literal[
    "conversations_resolved",
    "conversations_assigned",
    "messages_sent",
    "first_responses",
    "frt_median_seconds",
    "frt_p90_seconds",
    "frt_achievement_pct",
    "resolution_median_seconds",
]


def _performance(request: Request, f: q.Filters, reader: GoldReader, cache: MetricsCache, dim: str, sort: str) -> Any:
    def compute() -> dict[str, Any]:
        if fast.supports(f):
            return fast.performance(reader.arrays(), f, dim, sort)
        with reader.cursor() as con:
            return _clean(q.performance(con, f, dim, sort))

    data = _cached(cache, reader, f"perf-{dim}", {**_filter_params(f), "sort": sort}, compute)
    rows = []
    for r in data["rows"]:
        link = drilldown(f, **({"attendant_id": r["id"]} if dim == "attendant" else {"team_id": r["id"]}))
        rows.append({**r, "drilldown": link})
    if wants_csv(request):
        return csv_response(rows, f"{dim}s")
    return json_response({**_periods(f, reader), "sort": sort, "rows": rows})


@router.get("/v1/metrics/attendants", response_model=PerformanceResponse, responses=CSV_RESPONSE)
def get_attendants(
    request: Request, f: FiltersDep, reader: ReaderDep, cache: CacheDep, sort: Sort = "conversations_resolved"
) -> Any:
    """Attendant ranking: messages sent, conversations assigned/resolved, FRT (as first responder) and
    resolution figures, each row with its previous-period values."""
    return _performance(request, f, reader, cache, "attendant", sort)


@router.get("/v1/metrics/teams", response_model=PerformanceResponse, responses=CSV_RESPONSE)
def get_teams(
    request: Request, f: FiltersDep, reader: ReaderDep, cache: CacheDep, sort: Sort = "conversations_resolved"
) -> Any:
    """Team ranking (team = the attendant's team at that moment), with previous-period values."""
    return _performance(request, f, reader, cache, "team", sort)


@router.get("/v1/metrics/calls", response_model=CallsResponse, responses=CSV_RESPONSE)
def get_calls(request: Request, f: FiltersDep, reader: ReaderDep, cache: CacheDep) -> Any:
    """Calls offered, accepted, rejected and missed (voice/video) per day, with period totals."""

    def compute() -> dict[str, Any]:
        with reader.cursor() as con:
            return _clean(q.calls(con, f))

    data = _cached(cache, reader, "calls", _filter_params(f), compute)
    if wants_csv(request):
        return csv_response(data["rows"], "calls_daily")
    zero = {"offered": 0, "accepted": 0, "rejected": 0, "missed": 0, "voice": 0, "video": 0}
    totals = {**zero, **{k: v for k, v in (data["totals"] or {}).items() if v is not None}}
    previous = {**zero, **{k: v for k, v in (data["previous_totals"] or {}).items() if v is not None}}
    return json_response(
        {
            **_periods(f, reader),
            "totals": totals,
            "previous_totals": previous,
            "change_pct": q.change_pct(totals, previous),
            "rows": data["rows"],
        }
    )


def _encode_cursor(row: dict[str, Any]) -> str:
    opened = row["opened_at"]
    opened_s = opened.isoformat() if isinstance(opened, datetime) else str(opened)
    raw = orjson.dumps([opened_s, row["conversation_id"]])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        opened, conversation_id = orjson.loads(raw)
        datetime.fromisoformat(opened)
        if not isinstance(conversation_id, str):
            raise ValueError("bad cursor")
        return opened, conversation_id
    except Exception as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid cursor") from exc


SlaOutcome = Literal["met", "breached", "pending"]


@router.get("/v1/conversations/facts", response_model=FactsPage, responses={**CSV_RESPONSE, 400: {}})
def get_conversation_facts(
    request: Request,
    f: FiltersDep,
    reader: ReaderDep,
    first_responder_id: Annotated[list[str] | None, Query(description="First responder(s).")] = None,
    hour: Annotated[int | None, Query(ge=0, le=23, description="Opened in this local hour.")] = None,
    weekday: Annotated[int | None, Query(ge=1, le=7, description="Opened on this ISO weekday.")] = None,
    conversation_status: Annotated[
        Literal["open", "resolved", "expired", "abandoned"] | None,
        Query(alias="status", description="Conversation status."),
    ] = None,
    frt_sla: SlaOutcome | None = None,
    next_reply_sla: SlaOutcome | None = None,
    resolution_sla: SlaOutcome | None = None,
    reopened: Annotated[bool | None, Query(description="Only conversations a later one reopened.")] = None,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """One row per conversation (every clock, SLA outcome, attribution), opened in the period, ordered by
    opened_at; cursor-paginated. The drill-down target of every metrics bucket."""
    extra: list[str] = []
    if first_responder_id:
        extra.append(q.in_list("first_responder_id", [x for x in first_responder_id if x] or [""]))
    if hour is not None:
        extra.append(f"opened_hour = {int(hour)}")
    if weekday is not None:
        extra.append(f"opened_weekday = {int(weekday)}")
    for column, value in (
        ("status", conversation_status),
        ("frt_sla", frt_sla),
        ("next_reply_sla", next_reply_sla),
        ("resolution_sla", resolution_sla),
    ):
        if value is not None:
            extra.append(f"{column} = {q.lit(value)}")
    if reopened is not None:
        extra.append(f"reopened = {'true' if reopened else 'false'}")
    after = _decode_cursor(cursor) if cursor else None
    with reader.cursor() as con:
        rows = q.facts_page(con, f, extra=extra, after=after, limit=limit + 1)
    rows = [_clean(r) for r in rows]
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    rows = rows[:limit]
    if wants_csv(request):
        response = csv_response(rows, "conversation_facts")
        if next_cursor:
            response.headers["X-Next-Cursor"] = next_cursor
        return response
    return {"rows": rows, "next_cursor": next_cursor}
