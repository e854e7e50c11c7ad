"""Metrics benchmark: BeaZap gold through the HTTP API vs the seed's PostgreSQL design.

    uv run python -m benchmarks.metrics                # a year, 50 instances, ~10M messages
    uv run python -m benchmarks.metrics --scale 0.05   # a quick run (5 % of the conversations)

1. Generates one simulated year of silver traffic **directly with DuckDB** (deterministic hash-based
   generator: conversations with an inbound opening, a human first response, alternating exchanges,
   resolution/expiry, assignments and calls) and writes it as the silver Delta tables.
2. (a) builds gold with ``gold.runner.build_gold`` (timed: the full rebuild) and serves it with the real
   FastAPI app under uvicorn on loopback, uncached; (b) loads the same messages and conversations
   into a dedicated PostgreSQL database with exactly the seed's tables and indexes
   (conversations(instance_id, opened_at), conversations(instance_id, status),
   messages(conversation_id, timestamp), unique (instance_id, message_id), partial SLA index) and
   serves it with ``benchmarks.metrics_pg_api``: a minimal seed-style FastAPI app in its own uvicorn
   process, pooled psycopg, SQL ``GROUP BY`` on request, the same paths and answer shape (previous
   period included). The database is created and dropped.
3. Times the API-equivalent queries (hourly volume for 30 days of one instance, volume by month
   over a year, today's overview, daily SLA for 90 days, attendant ranking for a month) over
   rotating instances, through HTTP with the same httpx client for both APIs, interleaved request
   by request, plus PostgreSQL's bare SQL (one query, no HTTP, no previous period: informative), and
   prints p50/p99 and the speed-up PG HTTP / BeaZap HTTP, also as a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa

from benchmarks.servers import free_port
from benchmarks.workdir import scratch_dir
from silver import schema as s

YEAR_START = date(2025, 1, 1)
PG_ADMIN_URL = os.environ.get("BEAZAP_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


# --- 1. silver generation ----------------------------------------------------------------------------------------
def generate(con: duckdb.DuckDBPyConnection, instances: int, days: int, per_day: int) -> None:
    """Create DuckDB tables conv, msg, ops, calls with a consistent simulated year."""
    start = f"timestamptz '{YEAR_START.isoformat()} 03:00:00+00'"
    con.execute(f"""
        create or replace table conv as
        with base as (
            select i, d, k, hash(i, d, k) as h
            from range({instances}) a(i), range({days}) b(d), range({per_day}) c(k)
        )
        select 'inst-' || lpad(i::varchar, 3, '0') as instance_id,
               'c-' || i || '-' || d || '-' || k as conversation_id,
               '+55119' || lpad(((h >> 3) % 90000000)::varchar, 8, '0') as contact_key,
               -- busier in the day: fold the second-of-day towards 08:00–20:00 local
               {start} + to_days(d::int) + to_seconds((5 * 3600 + (h % 54000))::bigint) as opened_at,
               4 + ((h >> 8) % 13)::int as n_msgs,
               20 + ((h >> 16) % 3600)::int as frt,
               60 + ((h >> 24) % 900)::int as step,
               (h >> 32) % 10 as fate,
               60 + ((h >> 40) % 3600)::int as resolve_after,
               'inst-' || lpad(i::varchar, 3, '0') || '-att' || ((h >> 44) % 8) as assignee_id,
               'inst-' || lpad(i::varchar, 3, '0') || '-team' || ((h >> 44) % 8 % 3) as team_id
        from base
    """)
    end = f"{start} + to_days({days})"
    con.execute("""
        create or replace table msg as
        select c.instance_id, c.conversation_id || '-' || j as message_id, c.conversation_id, c.contact_key,
               case when j % 2 = 0 then 'inbound' else 'outbound' end as direction,
               (['text','text','text','text','image','audio','video','document','sticker','location'])
                   [1 + (hash(c.conversation_id, j) % 10)::int] as kind,
               case when j = 0 then c.opened_at
                    else c.opened_at + to_seconds(c.frt::bigint) + to_seconds(((j - 1) * c.step)::bigint)
               end as event_at,
               case when j % 2 = 1 then c.assignee_id end as sender_attendant_id
        from conv c, range(c.n_msgs) r(j)
    """)
    con.execute("""
        create or replace table conv2 as
        select c.*, c.opened_at + to_seconds(c.frt::bigint) as first_response_at,
               c.opened_at + to_seconds(c.frt::bigint) + to_seconds(((c.n_msgs - 2) * c.step)::bigint)
                   as last_message_at,
               c.opened_at + to_seconds((c.frt / 2)::bigint) as first_assigned_at
        from conv c
    """)
    con.execute(f"""
        create or replace table conv as
        select *,
               case when fate < 8 and last_message_at + to_seconds(resolve_after::bigint) < {end} then 'resolved'
                    when fate >= 8 and last_message_at + interval 24 hours < {end} then 'expired'
                    else 'open' end as status
        from conv2
    """)
    con.execute("drop table conv2")
    con.execute("""
        create or replace table ops as
        select conversation_id || '-a' as action_id, instance_id, conversation_id, contact_key, 'assign' as action,
               'system' as actor_id, assignee_id as attendant_id, team_id, first_assigned_at as occurred_at
        from conv
        union all
        select conversation_id || '-r', instance_id, conversation_id, contact_key, 'resolve', assignee_id,
               assignee_id, team_id, last_message_at + to_seconds(resolve_after::bigint)
        from conv where status = 'resolved'
    """)
    con.execute("""
        create or replace table calls as
        select instance_id, conversation_id || '-call' as call_id, contact_key,
               hash(conversation_id) % 4 = 0 as is_video,
               false as is_group, opened_at - interval 2 minutes as offered_at,
               (['accepted','rejected','missed'])[1 + (hash(conversation_id, 'o') % 3)::int] as outcome
        from conv where hash(conversation_id, 'call') % 20 = 0
    """)


def _select_for(schema: pa.Schema, exprs: dict[str, str]) -> str:
    duck_types = {
        pa.string(): "varchar",
        pa.int32(): "integer",
        pa.int64(): "bigint",
        pa.bool_(): "boolean",
        s.TS: "timestamptz",
    }
    cols = []
    for f in schema:
        expr = exprs.get(f.name)
        if expr is None or f.type not in duck_types:
            cols.append(f"null as {f.name}")  # arrow casts the null column to the schema's type
        else:
            cols.append(f"({expr})::{duck_types[f.type]} as {f.name}")
    return ", ".join(cols)


def write_silver(con: duckdb.DuckDBPyConnection, lake: Any) -> None:
    month = "strftime(event_at, '%Y-%m')"
    messages = {
        "instance_id": "instance_id",
        "message_id": "message_id",
        "chat_jid": "substr(contact_key, 2) || '@s.whatsapp.net'",
        "chat_type": "'direct'",
        "contact_key": "contact_key",
        "contact_phone": "contact_key",
        "direction": "direction",
        "kind": "kind",
        "event_at": "event_at",
        "event_month": month,
        "first_received_at": "event_at",
        "last_received_at": "event_at",
        "status": "case when direction = 'outbound' then 'read' end",
        "edited": "false",
        "revoked": "false",
        "reaction_count": "0",
        "sender_attendant_id": "sender_attendant_id",
        "automated": "false",
        "via": "case when direction = 'outbound' then 'api' else 'customer' end",
        "conversation_id": "conversation_id",
    }
    conversations = {
        "conversation_id": "conversation_id",
        "instance_id": "instance_id",
        "contact_key": "contact_key",
        "chat_jid": "substr(contact_key, 2) || '@s.whatsapp.net'",
        "origin": "'inbound'",
        "opening_message_id": "conversation_id || '-0'",
        "opened_at": "opened_at",
        "first_response_at": "first_response_at",
        "first_response_message_id": "conversation_id || '-1'",
        "first_responder_id": "assignee_id",
        "last_message_at": "last_message_at",
        "last_inbound_at": "last_message_at",
        "status": "status",
        "resolved_at": "case when status = 'resolved' then last_message_at + to_seconds(resolve_after::bigint) end",
        "resolved_by": "case when status = 'resolved' then assignee_id end",
        "expired_at": "case when status = 'expired' then last_message_at + interval 24 hours end",
        "closed_at": "case when status = 'resolved' then last_message_at + to_seconds(resolve_after::bigint) "
        "when status = 'expired' then last_message_at end",
        "first_assigned_at": "first_assigned_at",
        "assignee_id": "assignee_id",
        "team_id": "team_id",
        "inbound_count": "(n_msgs + 1) // 2",
        "outbound_count": "n_msgs // 2",
        "is_reopen": "false",
        "reopened": "false",
        "opened_month": "strftime(opened_at, '%Y-%m')",
    }
    ops = {f.name: f.name for f in s.OPS_EVENTS_SCHEMA if f.name != "details"}
    calls = {
        "instance_id": "instance_id",
        "call_id": "call_id",
        "chat_jid": "substr(contact_key, 2) || '@s.whatsapp.net'",
        "contact_key": "contact_key",
        "is_video": "is_video",
        "is_group": "is_group",
        "offered_at": "offered_at",
        "outcome": "outcome",
        "event_month": "strftime(offered_at, '%Y-%m')",
    }
    plan = [
        (s.MESSAGES, s.MESSAGES_SCHEMA, "msg", messages, s.MESSAGES_PARTITIONS),
        (s.CONVERSATIONS, s.CONVERSATIONS_SCHEMA, "conv", conversations, s.CONVERSATIONS_PARTITIONS),
        (s.OPS_EVENTS, s.OPS_EVENTS_SCHEMA, "ops", ops, None),
        (s.CALLS, s.CALLS_SCHEMA, "calls", calls, None),
    ]
    for table, schema, source, exprs, partitions in plan:
        reader = con.sql(f"select {_select_for(schema, exprs)} from {source}").to_arrow_reader(batch_size=1_000_000)
        batches = pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in reader))
        lake.write(table, batches, mode="overwrite", partition_by=partitions)


# --- 2b. PostgreSQL baseline (the seed's design) ---------------------------------------------------------------------
PG_DDL = """
create table conversations (
    id text primary key, instance_id text not null, contact_key text not null, status text not null,
    opened_at timestamptz not null, first_response_at timestamptz, resolved_at timestamptz,
    assignee_id text, team_id text
);
create table messages (
    id bigserial primary key, instance_id text not null, message_id text not null,
    conversation_id text not null references conversations(id), direction text not null, kind text not null,
    timestamp timestamptz not null, sender_attendant_id text
);
create index ix_conversations_instance_opened on conversations (instance_id, opened_at);
create index ix_conversations_instance_status on conversations (instance_id, status);
create index ix_messages_conversation_timestamp on messages (conversation_id, timestamp);
create unique index uq_messages_instance_message on messages (instance_id, message_id);
create index ix_conversations_sla on conversations (instance_id, status)
    where status = 'open' and first_response_at is null;
"""


def load_postgres(con: duckdb.DuckDBPyConnection, url: str, workdir: Path) -> float:
    import psycopg

    started = time.perf_counter()
    conv_csv, msg_csv = workdir / "conv.csv", workdir / "msg.csv"
    con.execute(
        "copy (select conversation_id, instance_id, contact_key, status, opened_at, first_response_at, "
        "case when status = 'resolved' then last_message_at + to_seconds(resolve_after::bigint) end, "
        f"assignee_id, team_id from conv order by opened_at) to '{conv_csv}' (header false)"
    )
    con.execute(
        "copy (select instance_id, message_id, conversation_id, direction, kind, event_at, sender_attendant_id "
        f"from msg order by event_at) to '{msg_csv}' (header false)"
    )
    with psycopg.connect(url, autocommit=True) as pg:
        # Load first, index after (the fastest honest way to build the same end state).
        ddl = PG_DDL.split("create index", 1)[0]
        pg.execute(ddl)
        for table, path, cols in (
            (
                "conversations",
                conv_csv,
                "id, instance_id, contact_key, status, opened_at, first_response_at, resolved_at, assignee_id, team_id",
            ),
            (
                "messages",
                msg_csv,
                "instance_id, message_id, conversation_id, direction, kind, timestamp, sender_attendant_id",
            ),
        ):
            with (
                pg.cursor() as cur,
                cur.copy(f"copy {table} ({cols}) from stdin (format csv)") as copy,
                open(path, "rb") as fh,
            ):
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
        pg.execute("set maintenance_work_mem = '1GB'")
        pg.execute("create index" + PG_DDL.split("create index", 1)[1])
        pg.execute("analyze")
    return time.perf_counter() - started


PG_QUERIES: dict[str, str] = {
    # The seed's get_hourly_volume: messages joined to conversations to filter the instance.
    "hourly_volume_30d": """
        select date_trunc('hour', m.timestamp at time zone 'America/Sao_Paulo') as hour, m.direction, count(*)
        from messages m join conversations c on c.id = m.conversation_id
        where c.instance_id = %(inst)s and m.timestamp >= %(start30)s and m.timestamp < %(end)s
        group by 1, 2 order by 1""",
    "volume_by_month_year": """
        select date_trunc('month', m.timestamp at time zone 'America/Sao_Paulo') as month, m.direction, count(*)
        from messages m join conversations c on c.id = m.conversation_id
        where c.instance_id = %(inst)s and m.timestamp >= %(start365)s and m.timestamp < %(end)s
        group by 1, 2 order by 1""",
    "overview_today": """
        select
          (select count(*) from messages m join conversations c on c.id = m.conversation_id
            where c.instance_id = %(inst)s and m.timestamp >= %(today)s and m.timestamp < %(end)s
              and m.direction = 'inbound') as inbound,
          (select count(*) from messages m join conversations c on c.id = m.conversation_id
            where c.instance_id = %(inst)s and m.timestamp >= %(today)s and m.timestamp < %(end)s
              and m.direction = 'outbound') as outbound,
          (select count(*) from conversations where instance_id = %(inst)s and opened_at >= %(today)s
              and opened_at < %(end)s) as opened,
          (select count(*) from conversations where instance_id = %(inst)s and status = 'open'
              and first_response_at is null) as waiting,
          (select percentile_cont(0.5) within group (order by extract(epoch from first_response_at - opened_at))
             from conversations where instance_id = %(inst)s and opened_at >= %(today)s
              and opened_at < %(end)s) as frt_median""",
    "sla_daily_90d": """
        select date_trunc('day', opened_at at time zone 'America/Sao_Paulo') as day, count(*),
               avg(extract(epoch from first_response_at - opened_at)),
               percentile_cont(0.5) within group (order by extract(epoch from first_response_at - opened_at)),
               percentile_cont(0.9) within group (order by extract(epoch from first_response_at - opened_at)),
               100.0 * count(*) filter (where first_response_at - opened_at <= interval '15 minutes')
                   / nullif(count(first_response_at), 0)
        from conversations where instance_id = %(inst)s and opened_at >= %(start90)s and opened_at < %(end)s
        group by 1 order by 1""",
    "attendant_ranking_month": """
        select assignee_id, count(*) filter (where status = 'resolved') as resolved,
               avg(extract(epoch from first_response_at - opened_at)) as avg_frt,
               percentile_cont(0.5) within group (order by extract(epoch from resolved_at - opened_at))
        from conversations where instance_id = %(inst)s and opened_at >= %(start30)s and opened_at < %(end)s
        group by 1 order by resolved desc""",
}
MESSAGE_VOLUME_QUERIES = ("hourly_volume_30d", "volume_by_month_year", "overview_today")


def api_paths(last_day: date) -> dict[str, Callable[[str], str]]:
    d30 = (last_day - timedelta(days=29)).isoformat()
    d90 = (last_day - timedelta(days=89)).isoformat()
    d365 = (last_day - timedelta(days=364)).isoformat()
    end = last_day.isoformat()
    return {
        "hourly_volume_30d": lambda i: f"/v1/metrics/volume?granularity=hour&instance_id={i}&from={d30}&to={end}",
        "volume_by_month_year": lambda i: f"/v1/metrics/volume?granularity=month&instance_id={i}&from={d365}&to={end}",
        "overview_today": lambda i: f"/v1/metrics/overview?instance_id={i}&from={end}&to={end}",
        "sla_daily_90d": lambda i: f"/v1/metrics/sla?instance_id={i}&from={d90}&to={end}",
        "attendant_ranking_month": lambda i: f"/v1/metrics/attendants?instance_id={i}&from={d30}&to={end}",
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class NoCache:
    """The metrics cache switched off: every request computes (the 'uncached' target)."""

    ttl = 0.0

    def get(self, key: str) -> None:
        return None

    def set(self, key: str, value: Any) -> None:
        return None

    def clear(self) -> None:
        return None


def bench_app() -> Any:
    """uvicorn factory for the benchmark server process: the real app, gold loaded, cache off."""
    from api.app import create_app
    from core.settings import get_settings
    from gold.serving.reader import GoldReader
    from storage.db import get_engine
    from storage.lake import Lake

    settings = get_settings()
    app = create_app(settings)
    app.state.engine = get_engine(settings)
    app.state.gold_reader = GoldReader(Lake.from_settings(settings), refresh_seconds=3600, background=False)
    app.state.gold_reader.refresh(force=True)
    app.state.metrics_cache = NoCache()
    return app


def serve(
    env: dict[str, str],
    workdir: Path,
    factory: str = "benchmarks.metrics:bench_app",
    name: str = "server",
    cwd: Path | None = None,
) -> tuple[subprocess.Popen, str]:
    """Start an API in its own process (one uvicorn worker), as in production; wait until it answers.
    ``cwd``: run another source tree of the project (its modules come first on the path)."""
    port = free_port()
    env = {**os.environ, **env}
    log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            factory,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        try:
            if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the API server did not start; see {workdir / f'{name}.log'}")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="Fraction of the full year's conversations.")
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=200, help="Timed requests per query and system.")
    parser.add_argument("--keep", type=Path, default=None, help="Keep the lake here instead of a temp dir.")
    args = parser.parse_args()
    per_day = max(1, round(55 * args.scale))

    workdir = scratch_dir("metrics-")
    lake_root = args.keep or workdir / "lake"
    os.environ["BEAZAP_SECRET_KEY_FILE"] = str(workdir / "secret.key")
    from core.settings import Settings
    from gold.runner import build_gold
    from storage import migrate
    from storage.db import make_engine
    from storage.instances import add_instance
    from storage.lake import Lake
    from storage.tokens import create_token

    settings = Settings(lake_uri=str(lake_root), database_url=f"sqlite:///{workdir / 'ops.db'}")
    lake = Lake.from_settings(settings)
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    t0 = time.perf_counter()
    generate(con, args.instances, args.days, per_day)
    n_msg = con.execute("select count(*) from msg").fetchall()[0][0]
    n_conv = con.execute("select count(*) from conv").fetchall()[0][0]
    gen_s = time.perf_counter() - t0
    print(
        f"generated {n_msg:,} messages, {n_conv:,} conversations, {args.instances} instances, "
        f"{args.days} days in {gen_s:.1f} s (DuckDB generator → silver Delta)"
    )
    t0 = time.perf_counter()
    write_silver(con, lake)
    print(f"silver written in {time.perf_counter() - t0:.1f} s")

    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    instance_ids = [f"inst-{i:03d}" for i in range(args.instances)]
    for inst in instance_ids:
        add_instance(engine, inst, "bench", token=f"t-{inst}")
    token = create_token(engine, "bench", "read-only")
    end_ts = datetime.combine(YEAR_START + timedelta(days=args.days), datetime.min.time(), UTC) + timedelta(hours=3)
    t0, c0 = time.perf_counter(), time.process_time()
    stats = build_gold(lake, engine=engine, settings=settings, as_of=end_ts)
    gold_s, gold_cpu = time.perf_counter() - t0, time.process_time() - c0
    sizes = ", ".join(f"{k}={v['rows']:,}" for k, v in stats.items())
    print(f"gold full rebuild: {gold_s:.1f} s wall, {gold_cpu:.1f} s CPU (all threads; load-independent) ({sizes})")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    t0 = time.perf_counter()
    server, base = serve(
        {
            "BEAZAP_LAKE_URI": settings.lake_uri,
            "BEAZAP_DATABASE_URL": settings.database_url,
            "BEAZAP_LOG_LEVEL": "WARNING",
        },
        workdir,
    )
    print(f"metrics API started (gold loaded into memory) in {time.perf_counter() - t0:.1f} s")

    pg_name = f"beazap_bench_{uuid.uuid4().hex[:8]}"
    import psycopg

    admin = psycopg.connect(PG_ADMIN_URL, autocommit=True)
    admin.execute(f'create database "{pg_name}"')
    pg_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{pg_name}"
    pg_server = None
    try:
        load_s = load_postgres(con, pg_url, workdir)
        print(f"PostgreSQL baseline loaded and indexed in {load_s:.1f} s")
        pg_token = uuid.uuid4().hex
        pg_server, pg_base = serve(
            {"BEAZAP_BENCH_PG_URL": pg_url, "BEAZAP_BENCH_PG_TOKEN": pg_token},
            workdir,
            factory="benchmarks.metrics_pg_api:create_app",
            name="pg-server",
        )
        results = time_queries(
            base, token, pg_base, pg_token, pg_url, YEAR_START + timedelta(days=args.days - 1), end_ts, instance_ids,
            args.requests,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
        if pg_server is not None:
            pg_server.terminate()
            pg_server.wait(timeout=30)
        admin.execute(f'drop database if exists "{pg_name}" with (force)')
        admin.close()
        engine.dispose()
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print_results(results)
    print(
        f"\ngold full rebuild {gold_s:.1f} s wall / {gold_cpu:.1f} s CPU for {n_msg:,} messages / {n_conv:,} "
        f"conversations; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


def time_queries(
    base: str,
    token: str,
    pg_base: str,
    pg_token: str,
    pg_url: str,
    last_day: date,
    end_ts: datetime,
    instance_ids: list[str],
    requests: int,
) -> dict[str, dict[str, float]]:
    """Per query: BeaZap through HTTP, the PostgreSQL API through HTTP, and PostgreSQL's bare SQL,
    interleaved request by request (same instance each round) so load changes hit all three alike."""
    import psycopg

    paths = api_paths(last_day)
    params = {
        "end": end_ts,
        "today": end_ts - timedelta(days=1),
        "start30": end_ts - timedelta(days=30),
        "start90": end_ts - timedelta(days=90),
        "start365": end_ts - timedelta(days=365),
    }
    results: dict[str, dict[str, float]] = {}
    with (
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client,
        httpx.Client(base_url=pg_base, headers={"Authorization": f"Bearer {pg_token}"}, timeout=60) as pg_client,
        psycopg.connect(pg_url) as pg,
    ):
        for name, sql in PG_QUERIES.items():
            # warm-up all three once per instance (caches, plans, pool), then time
            for inst in instance_ids[:3]:
                client.get(paths[name](inst)).raise_for_status()
                pg_client.get(paths[name](inst)).raise_for_status()
                pg.execute(sql, {**params, "inst": inst}).fetchall()
            api_times: list[float] = []
            pg_api_times: list[float] = []
            pg_times: list[float] = []
            for k in range(requests):
                inst = instance_ids[k % len(instance_ids)]
                for http, times in ((client, api_times), (pg_client, pg_api_times)):
                    t = time.perf_counter()
                    r = http.get(paths[name](inst))
                    times.append((time.perf_counter() - t) * 1000)
                    r.raise_for_status()
                t = time.perf_counter()
                pg.execute(sql, {**params, "inst": inst}).fetchall()
                pg_times.append((time.perf_counter() - t) * 1000)
            results[name] = {
                "api_p50": statistics.median(api_times),
                "api_p99": percentile(api_times, 0.99),
                "pg_api_p50": statistics.median(pg_api_times),
                "pg_api_p99": percentile(pg_api_times, 0.99),
                "pg_p50": statistics.median(pg_times),
                "pg_p99": percentile(pg_times, 0.99),
            }
    return results


def print_results(results: dict[str, dict[str, float]]) -> None:
    print()
    print(
        f"{'query':26} {'BeaZap HTTP p50':>15} {'p99':>8} {'PG HTTP p50':>12} {'p99':>8} {'speed-up':>9} "
        f"{'PG bare SQL p50':>16} {'p99':>8}"
    )
    for name, r in results.items():
        kind = "message volume" if name in MESSAGE_VOLUME_QUERIES else "conversation level"
        print(
            f"{name:26} {r['api_p50']:13.2f}ms {r['api_p99']:6.2f}ms {r['pg_api_p50']:10.2f}ms "
            f"{r['pg_api_p99']:6.2f}ms {r['pg_api_p50'] / r['api_p50']:8.1f}× {r['pg_p50']:14.2f}ms "
            f"{r['pg_p99']:6.2f}ms  ({kind})"
        )
    print("\n| query | BeaZap HTTP p50 | p99 | PG HTTP p50 | p99 | speed-up (p50) | PG bare SQL p50 | p99 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        cells = [r[k] for k in ("api_p50", "api_p99", "pg_api_p50", "pg_api_p99")]
        speed = r["pg_api_p50"] / r["api_p50"]
        print(
            f"| {name} | {' | '.join(f'{c:,.1f} ms' for c in cells)} | {speed:.1f}× | "
            f"{r['pg_p50']:,.1f} ms | {r['pg_p99']:,.1f} ms |"
        )


if __name__ == "__main__":
    main()
