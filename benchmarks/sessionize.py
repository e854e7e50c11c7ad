"""Sessionization cost: ``silver.sessionize.sessionize`` per million direct-chat messages, against
baselines measured in the same run on the same frames.

    python -m benchmarks.sessionize                    # 1M messages, 3 rounds
    python -m benchmarks.sessionize --sizes 1000000 3000000 --rounds 3
    python -m benchmarks.sessionize --profile          # seconds per statement of one sessionize run

The frames are synthetic and built with numpy (seeded): contacts with ~10 messages each, gaps mostly
seconds to hours, 6 % of them days (past the 24 h timeout, some past the 7-day abandonment limit),
inbound/outbound mix with automated sends, customer-opened chats that are never answered, and
assign/resolve actions — the shapes the issue-13 rules (a waiting conversation never expires by
inactivity; abandonment) have to handle.

- **polars sort + group** — sort the messages by contact and time, count per contact: the floor of
  any per-contact work;
- **gap-only SQL** — the plain rule in DuckDB (a new conversation after a resolve or an inactivity gap;
  ``lag`` + running sum + one group by): what sessionization cost before issue 13;
- **sessionize** — the product's (conversations, assignment, statuses, ``msg_conv``).

Each figure is the median of ``--rounds``, wall and CPU seconds (this process, all threads: the
comparable one on a loaded machine); ratios are to the baselines of the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

TIMEOUT_S = 24 * 3600.0
REOPEN_S = 24 * 3600.0
ABANDON_S = 7 * 24 * 3600.0
T0 = datetime(2026, 3, 1, tzinfo=UTC).timestamp()


def frames(n_messages: int, seed: int = 7) -> tuple[pa.Table, pa.Table]:
    """(tl_msgs, tl_ops) with about ``n_messages`` messages (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_contacts = max(1, n_messages // 10)
    per = rng.poisson(10, n_contacts).clip(1, None)
    contact = np.repeat(np.arange(n_contacts), per)
    n = len(contact)
    gaps = rng.lognormal(5.0, 2.0, n).clip(1, 20 * 3600)
    long = rng.random(n) < 0.06
    gaps[long] = rng.uniform(1.1, 9.0, long.sum()) * 86400  # past the timeout, a few past abandonment
    first = np.r_[True, contact[1:] != contact[:-1]]
    starts = np.flatnonzero(first)
    gaps[first] = rng.uniform(0, 30 * 86400, len(starts))
    t = np.floor(T0 + _segment_cumsum(gaps, starts)).astype("int64")
    inbound = rng.random(n) < 0.55
    silent = np.repeat(rng.random(n_contacts) < 0.08, per)  # never answered
    inbound |= silent
    automated = ~inbound & (rng.random(n) < 0.08)
    ids = np.char.add("m", np.arange(n).astype(str))
    keys = np.char.add("+55119", np.char.zfill(contact.astype(str), 8))
    instance = np.char.add("inst-", (contact % 8).astype(str))
    senders = np.where(~inbound & ~automated & (rng.random(n) < 0.6), "att-" + (contact % 20).astype(str), None)
    ts = pa.array(t * 1_000_000, pa.timestamp("us", tz="UTC"))
    msgs = pa.table(
        {
            "instance_id": instance,
            "contact_key": keys,
            "message_id": ids,
            "event_at": ts,
            "direction": np.where(inbound, "inbound", "outbound"),
            "automated": automated,
            "sender_attendant_id": pa.array(senders, pa.string()),
            "chat_jid": np.char.add(keys, "@s.whatsapp.net"),
        }
    )
    act = rng.random(n)
    pick = (act < 0.18) & ~silent
    what = np.where(act[pick] < 0.10, "assign", "resolve")
    at = (t[pick] + np.where(what == "assign", 0.5, 1800.5)) * 1_000_000
    ops = pa.table(
        {
            "instance_id": instance[pick],
            "contact_key": keys[pick],
            "action_id": np.char.add("a", np.arange(pick.sum()).astype(str)),
            "action": what,
            "actor_id": np.char.add("att-", (contact[pick] % 20).astype(str)),
            "attendant_id": pa.array(
                np.where(what == "assign", "att-" + (contact[pick] % 20).astype(str), None), pa.string()
            ),
            "team_id": pa.array([None] * int(pick.sum()), pa.string()),
            "occurred_at": pa.array(at.astype("int64"), pa.timestamp("us", tz="UTC")),
        }
    )
    return msgs, ops


def _segment_cumsum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each index in ``starts``."""
    total = np.cumsum(values)
    offsets = np.zeros_like(values)
    offsets[starts[1:]] = total[starts[1:] - 1]
    return total - np.maximum.accumulate(offsets)


class _clock:  # noqa: N801 - used as ``with _clock() as took``
    """Wall and CPU seconds of a block (CPU: this process, every DuckDB/polars thread included); a
    loaded machine inflates wall time, CPU seconds stay comparable. ``took`` fills in on exit."""

    def __enter__(self) -> dict[str, float]:
        self.took: dict[str, float] = {}
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self.took

    def __exit__(self, *exc: object) -> None:
        self.took["wall"] = time.perf_counter() - self.wall
        self.took["cpu"] = time.process_time() - self.cpu


def _connect(msgs: pa.Table, ops: pa.Table) -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute(f"set threads = {os.cpu_count() or 1}")
    con.register("msgs_arrow", msgs)
    con.register("ops_arrow", ops)
    con.execute("create table tl_msgs as select * from msgs_arrow")
    con.execute("create table tl_ops as select * from ops_arrow")
    return con


def polars_baseline(msgs: pa.Table) -> float:
    import polars as pl

    df = pl.from_arrow(msgs)
    with _clock() as took:
        out = df.sort(["instance_id", "contact_key", "event_at"]).group_by(["instance_id", "contact_key"]).len()
    assert out.height > 0
    return took


def gap_only(con: Any) -> float:
    """Pre-issue-13 sessionization: a new conversation after a resolve or a gap over the timeout."""
    with _clock() as took:
        _gap_only_sql(con)
    return took


def _gap_only_sql(con: Any) -> None:
    con.execute(
        f"""
        create or replace temp table gap_conv as
        with lc as (
            select instance_id, contact_key, occurred_at as t, arg_max(action, action_id) as action
            from tl_ops where action in ('resolve', 'reopen') group by all
        ),
        m as (
            select instance_id, contact_key, message_id, event_at as t, direction,
                   lag(event_at) over w as prev_t
            from tl_msgs window w as (partition by instance_id, contact_key order by event_at, direction, message_id)
        ),
        b as (
            select m.*, (m.prev_t is null or epoch(m.t) - epoch(m.prev_t) > {TIMEOUT_S}
                         or coalesce(l.action = 'resolve' and l.t >= m.prev_t, false))::int as brk
            from m asof left join lc l on l.instance_id = m.instance_id and l.contact_key = m.contact_key
                                      and m.t > l.t
        ),
        s as (
            select *, sum(brk) over (partition by instance_id, contact_key order by t, direction, message_id
                                     rows between unbounded preceding and current row) as sess
            from b
        )
        select instance_id, contact_key, sess, min(t) as opened_at, max(t) as last_message_at,
               count(*) filter (where direction = 'inbound') as inbound_count
        from s group by all
        """
    )


def run_sessionize(con: Any, profile: bool = False) -> tuple[float, dict[str, float]]:
    from silver import sessionize as mod

    as_of = datetime.fromtimestamp(T0 + 60 * 86400, UTC)
    steps: dict[str, float] = {}
    if profile:  # wrap execute to time each statement by its first words
        raw = con

        class Timed:
            def execute(self, sql: str, *args: Any) -> Any:
                head = " ".join(sql.split()[:6])
                started = time.perf_counter()
                out = raw.execute(sql, *args)
                steps[head] = steps.get(head, 0.0) + time.perf_counter() - started
                return out

        con = Timed()
    with _clock() as took:
        mod.sessionize(con, timeout_s=TIMEOUT_S, reopen_s=REOPEN_S, abandon_s=ABANDON_S, as_of=as_of)
    return took, steps


def bench(size: int, rounds: int, profile: bool) -> dict[str, Any]:
    msgs, ops = frames(size)
    con = _connect(msgs, ops)
    runs: dict[str, list[dict[str, float]]] = {"polars": [], "gap_only": [], "sessionize": []}
    for _ in range(rounds):
        runs["polars"].append(polars_baseline(msgs))
        runs["gap_only"].append(gap_only(con))
        runs["sessionize"].append(run_sessionize(con)[0])
    convs = con.execute("select count(*), count(*) filter (where status = 'abandoned') from conv_out").fetchone()
    per_m = 1_000_000 / msgs.num_rows
    out: dict[str, Any] = {
        "messages": msgs.num_rows,
        "actions": ops.num_rows,
        "conversations": convs[0],
        "abandoned": convs[1],
    }
    for name, took in runs.items():
        for kind in ("wall", "cpu"):
            out[f"{name}_{kind}"] = statistics.median(t[kind] for t in took) * per_m
    for kind in ("wall", "cpu"):
        out[f"x_polars_{kind}"] = out[f"sessionize_{kind}"] / out[f"polars_{kind}"]
        out[f"x_gap_only_{kind}"] = out[f"sessionize_{kind}"] / out[f"gap_only_{kind}"]
    if profile:
        _, steps = run_sessionize(con, profile=True)
        out["profile"] = dict(sorted(steps.items(), key=lambda kv: -kv[1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    for size in args.sizes:
        r = bench(size, args.rounds, args.profile)
        print(
            f"{r['messages']:,} messages, {r['actions']:,} actions → {r['conversations']:,} conversations "
            f"({r['abandoned']:,} abandoned); per 1M messages, wall s / CPU s:"
        )
        for name, label in (
            ("polars", "polars sort + group"),
            ("gap_only", "gap-only SQL"),
            ("sessionize", "sessionize"),
        ):
            print(f"  {label:<20} {r[name + '_wall']:7.2f} / {r[name + '_cpu']:7.2f}")
        print(
            f"  sessionize ÷ polars {r['x_polars_wall']:.1f}x wall, {r['x_polars_cpu']:.1f}x CPU; "
            f"÷ gap-only {r['x_gap_only_wall']:.1f}x wall, {r['x_gap_only_cpu']:.1f}x CPU"
        )
        for step, seconds in r.get("profile", {}).items():
            print(f"    {seconds:6.2f} s wall  {step}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
