"""SQL the metrics endpoints run against the gold serving store (``gold.serving.store``).

Every query reads one period *and* the previous period of the same length in one pass (a
``period`` label column), filtered by the caller's instances. Values are inlined as escaped SQL
literals (instance ids are already checked against the caller's scope; team/attendant ids are
escaped) so DuckDB can prune by its zone maps.

Filter semantics: ``team_id``/``attendant_id`` restrict messages to those sent by the attendants /
teams (inbound messages have neither), and conversations to those assigned to them (assignee at
resolution, or current while open).

Statistics and SLA rules are the macros of ``gold.stats`` (installed in the reader's database):
``sla_achievement``, ``achievement_pct``, ``bucket_counts``; the clocks and their columns are
:data:`CLOCK_COLUMNS`, shared with the numpy fast path (``gold.serving.fast``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NamedTuple

import duckdb

from gold.stats import BUCKETS, QUANTILES


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def in_list(column: str, values: Sequence[str]) -> str:
    return f"{column} in ({', '.join(lit(v) for v in values)})"


@dataclass(frozen=True)
class Filters:
    instance_ids: list[str]
    start: date
    end: date
    team_ids: list[str] = field(default_factory=list)
    attendant_ids: list[str] = field(default_factory=list)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def prev_end(self) -> date:
        return self.start - timedelta(days=1)

    @property
    def prev_start(self) -> date:
        return self.start - timedelta(days=self.days)

    def where(self, day_col: str, *, who: str | None = None, team: str | None = None, both: bool = True) -> str:
        """WHERE clause: instances + day range (both periods when ``both``) + team/attendant filters."""
        first = self.prev_start if both else self.start
        parts = [
            in_list("instance_id", self.instance_ids) if self.instance_ids else "false",
            f"{day_col} between date '{first.isoformat()}' and date '{self.end.isoformat()}'",
        ]
        if who and self.attendant_ids:
            parts.append(in_list(who, self.attendant_ids))
        if team and self.team_ids:
            parts.append(in_list(team, self.team_ids))
        return " and ".join(parts)

    @property
    def people(self) -> bool:
        """Whether a team or attendant filter is set."""
        return bool(self.team_ids or self.attendant_ids)

    def daily_table(self) -> str:
        """The daily message table to read: the slim rollup unless a people filter needs the dimensions."""
        return "gold.daily_volume" if self.people else "gold.daily_totals"

    def period(self, day_col: str) -> str:
        return f"case when {day_col} >= date '{self.start.isoformat()}' then 'current' else 'previous' end"


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def by_period(result: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r.pop("period"): r for r in result}


def change_pct(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, value in current.items():
        before = previous.get(key)
        if isinstance(value, int | float) and isinstance(before, int | float) and before:
            out[key] = round((value - before) / before * 100.0, 2)
        else:
            out[key] = None
    return out


FRT_STATS = """
    count(*) filter (where frt_seconds is not null) as first_responses,
    avg(frt_seconds) as frt_mean_seconds,
    quantile_cont(frt_seconds, 0.5) as frt_median_seconds,
    quantile_cont(frt_seconds, 0.9) as frt_p90_seconds,
    quantile_cont(frt_business_seconds, 0.5) as frt_business_median_seconds,
    quantile_cont(resolution_seconds, 0.5) as resolution_median_seconds,
    quantile_cont(resolution_seconds, 0.9) as resolution_p90_seconds,
    sla_achievement(frt_sla) as frt_sla_achievement_pct,
    achievement_pct(sum(next_reply_met), sum(next_reply_breached)) as next_reply_sla_achievement_pct,
    sla_achievement(resolution_sla) as resolution_sla_achievement_pct
"""


def overview(con: duckdb.DuckDBPyConnection, f: Filters) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"current": {}, "previous": {}}
    vol = rows(
        con,
        f"select {f.period('day')} as period, "
        "coalesce(sum(messages) filter (where direction = 'inbound'), 0)::bigint as messages_inbound, "
        "coalesce(sum(messages) filter (where direction = 'outbound'), 0)::bigint as messages_outbound, "
        "coalesce(sum(automated_messages), 0)::bigint as messages_automated "
        f"from {f.daily_table()} where {f.where('day', who='attendant_id', team='team_id')} group by 1",
    )
    conv = rows(
        con,
        f"select {f.period('day')} as period, sum(opened)::bigint as conversations_opened, "
        "sum(opened_inbound)::bigint as conversations_opened_inbound, "
        "sum(opened_outbound)::bigint as conversations_opened_outbound, "
        "sum(resolved)::bigint as conversations_resolved, sum(expired)::bigint as conversations_expired, "
        "coalesce(sum(abandoned), 0)::bigint as conversations_abandoned, "
        "sum(reopened)::bigint as conversations_reopened, "
        f"coalesce(sum(backlog) filter (where day = date '{f.end}' or day = date '{f.prev_end}'), 0)::bigint"
        " as backlog_end "
        f"from gold.daily_conversations where {f.where('day', who='assignee_id', team='team_id')} group by 1",
    )
    facts = rows(
        con,
        f"select {f.period('opened_day')} as period, {FRT_STATS} from gold.conversation_facts "
        f"where {f.where('opened_day', who='assignee_id', team='team_id')} group by 1",
    )
    calls = rows(
        con,
        f"select {f.period('day')} as period, sum(offered)::bigint as calls_offered, "
        f"sum(missed)::bigint as calls_missed from gold.calls_daily where {f.where('day')} group by 1",
    )
    for result in (vol, conv, facts, calls):
        for period, values in by_period(result).items():
            out[period].update({k: v for k, v in values.items() if k != "first_responses"})
    return out


GRANULARITY_BUCKET = {
    "hour": ("strftime(day, '%Y-%m-%d') || 'T' || lpad(hour::varchar, 2, '0') || ':00'", "day"),
    "day": ("strftime(day, '%Y-%m-%d')", "day"),
    "week": ("strftime(date_trunc('week', day), '%G-W%V')", "date_trunc('week', day)::date"),
    "month": ("strftime(day, '%Y-%m')", "date_trunc('month', day)::date"),
}
BY_COLUMN = {"none": None, "instance": "instance_id", "kind": "kind", "chat_type": "chat_type"}


# The conversation figures of a day/week/month volume bucket (opened split by origin).
CONVERSATION_BUCKET_FIGURES = (
    "conversations_opened",
    "conversations_opened_inbound",
    "conversations_opened_outbound",
    "conversations_resolved",
)


def volume(con: duckdb.DuckDBPyConnection, f: Filters, granularity: str, by: str) -> dict[str, Any]:
    label, start = GRANULARITY_BUCKET[granularity]
    slim = by in ("none", "instance") and not f.people
    if granularity == "hour":
        table = "gold.hourly_totals" if slim else "gold.hourly_volume"
    else:
        table = "gold.daily_totals" if slim else "gold.daily_volume"
    extra = BY_COLUMN[by]
    dim_select = ""
    group_extra = ""
    if extra == "instance_id":
        dim_select, group_extra = ", instance_id", ", instance_id"
    elif extra:
        dim_select, group_extra = f", {extra} as key", ", key"
    where = f.where("day", who="attendant_id", team="team_id", both=False)
    series = rows(
        con,
        f"select {label} as bucket, min({start}) as bucket_start{dim_select}, "
        "coalesce(sum(messages) filter (where direction = 'inbound'), 0)::bigint as inbound, "
        "coalesce(sum(messages) filter (where direction = 'outbound'), 0)::bigint as outbound, "
        "coalesce(sum(automated_messages), 0)::bigint as automated, sum(messages)::bigint as total "
        f"from {table} where {where} group by bucket{group_extra} order by bucket{group_extra}",
    )
    if granularity != "hour" and by in ("none", "instance"):
        conv_extra = ", instance_id" if by == "instance" else ""
        conv = rows(
            con,
            f"select {label} as bucket{conv_extra}, sum(opened)::bigint as conversations_opened, "
            "sum(opened_inbound)::bigint as conversations_opened_inbound, "
            "sum(opened_outbound)::bigint as conversations_opened_outbound, "
            "sum(resolved)::bigint as conversations_resolved from gold.daily_conversations "
            f"where {f.where('day', who='assignee_id', team='team_id', both=False)} group by bucket{conv_extra}",
        )
        index = {(r["bucket"], r.get("instance_id")): r for r in conv}
        for r in series:
            c = index.get((r["bucket"], r.get("instance_id")), {})
            for name in CONVERSATION_BUCKET_FIGURES:
                r[name] = c.get(name, 0)
    totals = by_period(
        rows(
            con,
            f"select {f.period('day')} as period, "
            "coalesce(sum(messages) filter (where direction = 'inbound'), 0)::bigint as inbound, "
            "coalesce(sum(messages) filter (where direction = 'outbound'), 0)::bigint as outbound, "
            "coalesce(sum(automated_messages), 0)::bigint as automated, "
            "coalesce(sum(messages), 0)::bigint as total "
            f"from {f.daily_table()} where {f.where('day', who='attendant_id', team='team_id')} group by 1",
        )
    )
    return {"rows": series, "totals": totals.get("current", {}), "previous_totals": totals.get("previous", {})}


# Message kinds reported as media by type (docs/metrics.md § Message activity), each as ``media_<kind>``.
MEDIA_KINDS = ("image", "audio", "video", "document", "sticker", "location", "contact")
ACTIVITY_MESSAGE_SUMS = ", ".join(
    [
        "coalesce(sum(edited_messages), 0)::bigint as edited",
        "coalesce(sum(revoked_messages), 0)::bigint as revoked",
        "coalesce(sum(reactions), 0)::bigint as reactions",
        *(f"coalesce(sum(messages) filter (where kind = {lit(k)}), 0)::bigint as media_{k}" for k in MEDIA_KINDS),
    ]
)
# A contact is one per instance: distinct (instance, contact_key); new ones have their first day in the rows.
_CONTACT = "instance_id || chr(0) || contact_key"
ACTIVITY_CONTACT_COUNTS = (
    f"count(distinct {_CONTACT})::bigint as contacts, "
    f"coalesce(count(distinct {_CONTACT}) filter (where new), 0)::bigint as new_contacts"
)
ACTIVITY_FIGURES = (
    "edited",
    "revoked",
    "reactions",
    *(f"media_{k}" for k in MEDIA_KINDS),
    "contacts",
    "new_contacts",
    "returning_contacts",
)


def _with_returning(r: dict[str, Any]) -> dict[str, Any]:
    """Zero-filled activity figures; returning contacts = contacts whose first day is before the bucket."""
    out = {**dict.fromkeys(ACTIVITY_FIGURES, 0), **r}
    out["returning_contacts"] = out["contacts"] - out["new_contacts"]
    return out


def activity(con: duckdb.DuckDBPyConnection, f: Filters, granularity: str) -> dict[str, Any]:
    """Edited, revoked, reactions, media by type and distinct contacts (new / returning) per day, week or
    month bucket, with the totals of the period and of the previous period. Instance-level figures:
    the caller rejects team/attendant filters."""
    label, start = GRANULARITY_BUCKET[granularity]
    where = f.where("day", both=False)
    merged: dict[str, dict[str, Any]] = {}
    for sql in (
        f"select {label} as bucket, min({start}) as bucket_start, {ACTIVITY_MESSAGE_SUMS} "
        f"from gold.daily_volume where {where} group by bucket",
        f"select {label} as bucket, min({start}) as bucket_start, {ACTIVITY_CONTACT_COUNTS} "
        f"from gold.contact_days where {where} group by bucket",
    ):
        for r in rows(con, sql):
            merged.setdefault(r["bucket"], {}).update(r)
    series = [_with_returning(merged[b]) for b in sorted(merged)]
    totals: dict[str, dict[str, Any]] = {}
    for sql in (
        f"select {f.period('day')} as period, {ACTIVITY_MESSAGE_SUMS} from gold.daily_volume "
        f"where {f.where('day')} group by 1",
        f"select {f.period('day')} as period, {ACTIVITY_CONTACT_COUNTS} from gold.contact_days "
        f"where {f.where('day')} group by 1",
    ):
        for period, values in by_period(rows(con, sql)).items():
            totals.setdefault(period, {}).update(values)
    return {
        "rows": series,
        "totals": _with_returning(totals.get("current", {})),
        "previous_totals": _with_returning(totals.get("previous", {})),
    }


def heatmap(con: duckdb.DuckDBPyConnection, f: Filters) -> dict[str, Any]:
    """Inbound messages and conversations opened by weekday × hour. Under a team/attendant filter
    (module docstring) inbound messages are 0 and conversations are those assigned to the people,
    so the cells come from ``conversation_facts`` (``gold.heatmap`` has no people columns)."""
    if f.people:
        source = (
            "(select instance_id, opened_day as day, opened_weekday as weekday, opened_hour as hour, "
            "0::bigint as inbound_messages, 1::bigint as conversations_opened from gold.conversation_facts "
            f"where {f.where('opened_day', who='assignee_id', team='team_id')})"
        )
    else:
        source = "gold.heatmap"
    cells = rows(
        con,
        "select weekday, hour, sum(inbound_messages)::bigint as inbound_messages, "
        f"sum(conversations_opened)::bigint as conversations_opened from {source} "
        f"where {f.where('day', both=False)} group by weekday, hour order by weekday, hour",
    )
    totals = by_period(
        rows(
            con,
            f"select {f.period('day')} as period, sum(inbound_messages)::bigint as inbound_messages, "
            f"sum(conversations_opened)::bigint as conversations_opened from {source} where {f.where('day')} "
            "group by 1",
        )
    )
    return {"cells": cells, "totals": totals.get("current", {}), "previous_totals": totals.get("previous", {})}


class Clock(NamedTuple):
    """One clock of docs/metrics.md § Clocks: the rows it is measured on and its gold columns — the
    value and the SLA outcome/overdue seconds on each basis (``None``: the clock has no target)."""

    name: str
    source: str  # "inbound_facts" (conversations the customer opened), "facts" or "waits"
    calendar: str
    business: str
    outcome_calendar: str | None
    outcome_business: str | None
    overdue_calendar: str | None
    overdue_business: str | None


CLOCK_COLUMNS: tuple[Clock, ...] = (
    Clock(
        "first_response",
        "inbound_facts",
        "frt_seconds",
        "frt_business_seconds",
        "frt_sla_calendar",
        "frt_sla_business",
        "frt_overdue_calendar_seconds",
        "frt_overdue_business_seconds",
    ),
    Clock(
        "next_reply",
        "waits",
        "reply_seconds",
        "reply_business_seconds",
        "sla_outcome_calendar",
        "sla_outcome_business",
        "sla_overdue_calendar_seconds",
        "sla_overdue_business_seconds",
    ),
    Clock(
        "resolution",
        "facts",
        "resolution_seconds",
        "resolution_business_seconds",
        "resolution_sla_calendar",
        "resolution_sla_business",
        "resolution_overdue_calendar_seconds",
        "resolution_overdue_business_seconds",
    ),
    Clock("handling", "facts", "handling_seconds", "handling_business_seconds", None, None, None, None),
)
BASES = ("calendar", "business")
SOURCES = {
    "inbound_facts": ("gold.conversation_facts", "origin = 'inbound'"),
    "facts": ("gold.conversation_facts", "true"),
    "waits": ("gold.reply_waits", "true"),
}


def empty_clock(clock: str, basis: str) -> dict[str, Any]:
    """The statistics of a clock with no rows."""
    return {
        "clock": clock,
        "basis": basis,
        "count": 0,
        "mean_seconds": None,
        "median_seconds": None,
        "p90_seconds": None,
        "buckets": dict.fromkeys(BUCKETS, 0),
        "sla_met": 0,
        "sla_breached": 0,
        "sla_pending": 0,
        "achievement_pct": None,
        "breached_overdue_seconds": None,
    }


def _clock_stats_sql(basis: str) -> str:
    """count, mean, median/p90, buckets and SLA counts of one basis over the union of clock rows."""
    v, o, od = f"v_{basis}", f"o_{basis}", f"od_{basis}"
    qs = ", ".join(str(q) for q in QUANTILES)
    return (
        f"count({v}) as {basis}_count, avg({v}) as {basis}_mean, quantile_cont({v}, [{qs}]) as {basis}_q, "
        f"bucket_counts({v}) as {basis}_buckets, "
        f"count(*) filter (where {o} = 'met') as {basis}_met, "
        f"count(*) filter (where {o} = 'breached') as {basis}_breached, "
        f"count(*) filter (where {o} = 'pending') as {basis}_pending, "
        f"sla_achievement({o}) as {basis}_pct, "
        f"sum({od}) filter (where {o} = 'breached') as {basis}_overdue"
    )


def sla(con: duckdb.DuckDBPyConnection, f: Filters) -> dict[str, Any]:
    """Every clock on both bases (each basis's SLA outcomes on its own time), for both periods, and a
    daily series by opened day (achievements on the policy's basis)."""
    where = f.where("opened_day", who="assignee_id", team="team_id")
    parts = []
    for c in CLOCK_COLUMNS:
        table, cond = SOURCES[c.source]
        cols = [c.calendar, c.business, c.outcome_calendar, c.outcome_business, c.overdue_calendar, c.overdue_business]
        values = ", ".join(col or "null" for col in cols)
        parts.append(
            f"select {f.period('opened_day')} as period, {lit(c.name)} as clock, {values} "
            f"from {table} where {cond} and {where}"
        )
    union = " union all ".join(parts)
    stats = rows(
        con,
        f"select period, clock, {_clock_stats_sql('calendar')}, {_clock_stats_sql('business')} "
        f"from ({union}) v(period, clock, v_calendar, v_business, o_calendar, o_business, od_calendar, od_business) "
        "group by period, clock",
    )
    found = {(r["period"], r["clock"]): r for r in stats}
    clocks: dict[str, list[dict[str, Any]]] = {}
    for period in ("current", "previous"):
        out = []
        for c in CLOCK_COLUMNS:
            r = found.get((period, c.name))
            for basis in BASES:
                stat = empty_clock(c.name, basis)
                if r is not None:
                    quantiles = r[f"{basis}_q"] or [None, None]
                    stat.update(
                        count=r[f"{basis}_count"],
                        mean_seconds=r[f"{basis}_mean"],
                        median_seconds=quantiles[0],
                        p90_seconds=quantiles[1],
                        buckets=dict(zip(BUCKETS, r[f"{basis}_buckets"], strict=True)),
                        sla_met=r[f"{basis}_met"],
                        sla_breached=r[f"{basis}_breached"],
                        sla_pending=r[f"{basis}_pending"],
                        achievement_pct=r[f"{basis}_pct"],
                        breached_overdue_seconds=r[f"{basis}_overdue"] if r[f"{basis}_breached"] else None,
                    )
                out.append(stat)
        clocks[period] = out
    days = rows(
        con,
        f"""
        select opened_day as day, count(*)::bigint as conversations,
               quantile_cont(frt_seconds, 0.5) as frt_median_seconds,
               quantile_cont(frt_seconds, 0.9) as frt_p90_seconds,
               sla_achievement(frt_sla) as frt_achievement_pct,
               achievement_pct(sum(next_reply_met), sum(next_reply_breached)) as next_reply_achievement_pct,
               quantile_cont(resolution_seconds, 0.5) as resolution_median_seconds,
               sla_achievement(resolution_sla) as resolution_achievement_pct
        from gold.conversation_facts
        where {f.where("opened_day", who="assignee_id", team="team_id", both=False)}
        group by opened_day order by opened_day
        """,
    )
    return {"clocks": clocks["current"], "previous_clocks": clocks["previous"], "rows": days}


def performance(con: duckdb.DuckDBPyConnection, f: Filters, dimension: str, sort: str) -> dict[str, Any]:
    """Attendant (dimension='attendant') or team ranking with the previous period per row."""
    if dimension == "attendant":
        msg_key, frt_key, res_key = "attendant_id", "first_responder_id", "assignee_id"
        team_expr = "max(team_id)"
    else:
        msg_key, frt_key, res_key = "team_id", "first_responder_team_id", "team_id"
        team_expr = "null"
    ids_filter = f.attendant_ids if dimension == "attendant" else f.team_ids

    def where(day: str, key: str) -> str:
        clause = f.where(day)
        if ids_filter:
            clause += " and " + in_list(key, ids_filter)
        if dimension == "attendant" and f.team_ids:
            clause += " and " + in_list("team_id", f.team_ids)
        return clause

    queries = [
        f"""select {f.period("day")} as period, {msg_key} as id, {team_expr} as team_id,
                   sum(messages)::bigint as messages_sent
            from gold.daily_volume where {where("day", msg_key)} and {msg_key} is not null group by 1, 2""",
        f"""select {f.period("opened_day")} as period, {frt_key} as id, count(*)::bigint as first_responses,
                   quantile_cont(frt_seconds, 0.5) as frt_median_seconds,
                   quantile_cont(frt_seconds, 0.9) as frt_p90_seconds,
                   sla_achievement(frt_sla) as frt_achievement_pct
            from gold.conversation_facts where {where("opened_day", frt_key)} and first_response_at is not null
            group by 1, 2""",
        f"""select {f.period("opened_day")} as period, {res_key} as id,
                   count(*)::bigint as conversations_assigned,
                   quantile_cont(resolution_seconds, 0.5) as resolution_median_seconds,
                   quantile_cont(resolution_seconds, 0.9) as resolution_p90_seconds
            from gold.conversation_facts where {where("opened_day", res_key)} and {res_key} is not null
            group by 1, 2""",
        f"""select {f.period("resolved_day")} as period, {res_key} as id, count(*)::bigint as conversations_resolved
            from gold.conversation_facts where {where("resolved_day", res_key)} and resolved_at is not null
            group by 1, 2""",
    ]
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for sql in queries:
        for r in rows(con, sql):
            if r["id"] is None:
                continue
            merged.setdefault((r["period"], r["id"]), {}).update(r)
    result = [{**RANKING_DEFAULTS, **r} for r in merged.values()]
    current = {r["id"]: r for r in result if r["period"] == "current"}
    previous = {r["id"]: r for r in result if r["period"] == "previous"}
    for r in list(current.values()) + list(previous.values()):
        r.pop("period")
    return ranked(current, previous, sort)


# Every field of an attendant/team ranking row, with its value when the gold rows have none.
RANKING_DEFAULTS: dict[str, Any] = {
    "team_id": None,
    "messages_sent": 0,
    "conversations_assigned": 0,
    "conversations_resolved": 0,
    "first_responses": 0,
    "frt_median_seconds": None,
    "frt_p90_seconds": None,
    "frt_achievement_pct": None,
    "resolution_median_seconds": None,
    "resolution_p90_seconds": None,
}
ASCENDING_SORTS = ("frt_median_seconds", "frt_p90_seconds", "resolution_median_seconds")


def ranked(current: dict[Any, dict[str, Any]], previous: dict[Any, dict[str, Any]], sort: str) -> dict[str, Any]:
    """Ranking answer: current rows ordered by ``sort`` (times ascending, counts descending; empty
    values last; ties by id), each with its rank and its previous-period row."""
    descending = sort not in ASCENDING_SORTS
    ordered = sorted(
        current.values(),
        key=lambda r: (r.get(sort) is None, -(r.get(sort) or 0) if descending else (r.get(sort) or 0), r["id"]),
    )
    out = []
    for rank, r in enumerate(ordered, start=1):
        r["rank"] = rank
        r["previous"] = previous.get(r["id"], {})
        out.append(r)
    return {"rows": out}


def calls(con: duckdb.DuckDBPyConnection, f: Filters) -> dict[str, Any]:
    sums = (
        "sum(offered)::bigint as offered, sum(accepted)::bigint as accepted, sum(rejected)::bigint as rejected, "
        "sum(missed)::bigint as missed, coalesce(sum(offered) filter (where media = 'voice'), 0)::bigint as voice, "
        "coalesce(sum(offered) filter (where media = 'video'), 0)::bigint as video"
    )
    totals = by_period(
        rows(con, f"select {f.period('day')} as period, {sums} from gold.calls_daily where {f.where('day')} group by 1")
    )
    days = rows(
        con,
        f"select day, {sums} from gold.calls_daily where {f.where('day', both=False)} group by day order by day",
    )
    return {"totals": totals.get("current", {}), "previous_totals": totals.get("previous", {}), "rows": days}


def facts_page(
    con: duckdb.DuckDBPyConnection,
    f: Filters,
    *,
    extra: list[str],
    after: tuple[str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    clauses = [f.where("opened_day", who="assignee_id", team="team_id", both=False), *extra]
    if after is not None:
        clauses.append(f"(opened_at, conversation_id) > ({lit(after[0])}::timestamptz, {lit(after[1])})")
    return rows(
        con,
        f"select * from gold.conversation_facts where {' and '.join(clauses)} "
        f"order by opened_at, conversation_id limit {int(limit)}",
    )
