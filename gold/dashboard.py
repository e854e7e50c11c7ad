"""A short plain-text dashboard computed from gold: overview, SLA and the busiest hours.

``make demo`` / ``beazap demo`` prints :func:`summary` at the end of the pipeline. SLA achievement
is the ``gold.stats`` macro (on each target's policy basis).
"""

from __future__ import annotations

from gold.stats import install as install_macros
from storage.duck import connect
from storage.lake import Lake


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.0f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} %"


def summary(lake: Lake) -> str:
    """Overview (messages, conversations), SLA (FRT/resolution median + p90, achievement) and busiest hours."""
    con = connect(lake)
    install_macros(con)
    try:
        names = {
            r[0] for r in con.execute("select view_name from duckdb_views() where schema_name = 'gold'").fetchall()
        }
        needed = {"daily_volume", "conversation_facts", "heatmap"}
        if not needed <= names:
            return "gold is empty: run the pipeline (silver, then gold) first."
        lines: list[str] = []
        span = con.execute("select min(day), max(day), count(distinct instance_id) from gold.daily_volume").fetchone()
        msgs = con.execute(
            "select coalesce(sum(messages) filter (where direction = 'inbound'), 0), "
            "coalesce(sum(messages) filter (where direction = 'outbound'), 0), "
            "coalesce(sum(automated_messages), 0) from gold.daily_volume"
        ).fetchone()
        conv = con.execute(
            "select count(*), count(*) filter (where status = 'resolved'), count(*) filter (where status = 'expired'),"
            " count(*) filter (where status = 'open'), count(*) filter (where is_reopen),"
            " quantile_cont(frt_seconds, 0.5), quantile_cont(frt_seconds, 0.9),"
            " quantile_cont(frt_business_seconds, 0.5),"
            " quantile_cont(resolution_seconds, 0.5), quantile_cont(resolution_seconds, 0.9),"
            " sla_achievement(frt_sla), sla_achievement(resolution_sla),"
            " achievement_pct(sum(next_reply_met), sum(next_reply_breached))"
            " from gold.conversation_facts"
        ).fetchone()
        assert span is not None and msgs is not None and conv is not None
        lines.append(f"BeaZap dashboard — {span[2]} instance(s), {span[0]} → {span[1]}")
        lines.append("")
        lines.append("Overview")
        lines.append(f"  messages        {msgs[0]:>10,} inbound  {msgs[1]:>10,} outbound  ({msgs[2]:,} automated)")
        lines.append(
            f"  conversations   {conv[0]:>10,} opened   {conv[1]:>10,} resolved  {conv[2]:,} expired, "
            f"{conv[3]:,} open, {conv[4]:,} reopens"
        )
        lines.append("")
        lines.append("SLA")
        lines.append(
            f"  first response  median {_fmt_seconds(conv[5])} (business {_fmt_seconds(conv[7])}), "
            f"p90 {_fmt_seconds(conv[6])}, achievement {_pct(conv[10])}"
        )
        lines.append(f"  next reply      achievement {_pct(conv[12])}")
        lines.append(
            f"  resolution      median {_fmt_seconds(conv[8])}, p90 {_fmt_seconds(conv[9])}, "
            f"achievement {_pct(conv[11])}"
        )
        lines.append("")
        lines.append("Busiest hours (inbound messages, instance time zone)")
        days = ("", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
        top = con.execute(
            "select weekday, hour, sum(inbound_messages) as n from gold.heatmap "
            "group by weekday, hour order by n desc, weekday, hour limit 5"
        ).fetchall()
        for weekday, hour, n in top:
            lines.append(f"  {days[weekday]} {hour:02d}:00–{hour:02d}:59  {n:>8,}")
        return "\n".join(lines)
    finally:
        con.close()
