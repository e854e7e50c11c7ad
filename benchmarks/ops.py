"""Operational store benchmark (``python -m benchmarks.ops [--scale 1.0]``).

Creates a dedicated PostgreSQL database, fills it with ``1M × scale`` conversations and ``10M × scale``
messages (generate_series, server side; messages monthly-partitioned), then measures:

- p50/p99 of the live queries through the real repository code: the no-first-response queue
  (partial index), SLA at risk, the conversation list (plain and status=open) and conversation detail
  (conversation + first page of messages) — target p99 ≤ 10 ms;
- projector throughput applying realistic webhooks from bronze (target ≥ 5k events/s), with the
  ratio against the seed's design measured in the same run (one INSERT transaction per webhook);
- webhook-to-visible latency at 500 events/s: bronze group commits every 50 ms while ``run_forever``
  tails them; an observer polls the projector cursor (target p95 ≤ 1 s).

The database is dropped at the end (``--keep`` keeps it). Set ``BEAZAP_BENCH_PG_URL`` to use another
server (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa

from benchmarks.workdir import scratch_root
from bronze.rows import envelopes_table
from bronze.schema import WEBHOOK_EVENTS
from bronze.tables import ensure_tables
from core.settings import Settings, get_settings
from live.projector import WEBHOOK_CURSOR, Projector, run_forever
from storage import migrate, ops_repo, partitions
from storage.db import make_engine
from storage.instances import add_instance
from storage.lake import Lake
from storage.tables import projector_cursors
from storage.tokens import TenantScope

ADMIN_URL = os.environ.get("BEAZAP_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
INSTANCES = 20
BASE_TS = int(time.time()) - 3 * 86400


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# ------------------------------------------------------------------------------------------- data
def fill(engine: sa.Engine, n_conv: int) -> None:
    """1 conversation ≈ 10 messages; ~1 % open without a first response (of every instance: conversation
    g belongs to instance g % INSTANCES, so the 1 % is taken on g / INSTANCES), ~3 % open answered."""
    contacts = max(1, n_conv // 5)
    minutes = 90 * 24 * 60
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO accounts (id, name) VALUES ('bench', 'bench') ON CONFLICT DO NOTHING"))
        for i in range(INSTANCES):
            conn.execute(
                sa.text(
                    "INSERT INTO instances (id, account_id, webhook_token_hash, timezone) "
                    "VALUES (:i, 'bench', 'x', :tz) ON CONFLICT DO NOTHING"
                ),
                {"i": f"bench-{i}", "tz": get_settings().default_timezone},
            )
    step = 200_000
    for lo in range(1, n_conv + 1, step):
        hi = min(n_conv, lo + step - 1)
        with engine.begin() as conn:
            conn.execute(
                sa.text(f"""
                INSERT INTO conversations (id, instance_id, contact_key, chat_jid, origin, opening_message_id,
                    opened_at, first_response_at, first_response_message_id, first_responder_id,
                    last_message_at, last_inbound_at, status, resolved_at, closed_at, assignee_id, team_id,
                    inbound_count, outbound_count, version, updated_at)
                SELECT 'cv_' || lpad(g::text, 12, '0'), 'bench-' || (g % {INSTANCES}),
                    '+5511' || lpad((g % {contacts})::text, 9, '0'), NULL, 'inbound', 'm' || g,
                    o, CASE WHEN (g / {INSTANCES}) % 100 = 0 THEN NULL ELSE o + interval '3 min' END,
                    CASE WHEN (g / {INSTANCES}) % 100 = 0 THEN NULL ELSE 'm' || g || '-1' END,
                    CASE WHEN (g / {INSTANCES}) % 100 = 0 THEN NULL ELSE 'att' || (g % 50) END,
                    o + interval '18 min', o + interval '16 min',
                    CASE WHEN (g / {INSTANCES}) % 100 = 0 OR g % 33 = 0 THEN 'open' ELSE 'resolved' END,
                    CASE WHEN (g / {INSTANCES}) % 100 = 0 OR g % 33 = 0 THEN NULL ELSE o + interval '20 min' END,
                    CASE WHEN (g / {INSTANCES}) % 100 = 0 OR g % 33 = 0 THEN NULL ELSE o + interval '20 min' END,
                    CASE WHEN g % 3 = 0 THEN NULL ELSE 'att' || (g % 50) END, 'team' || (g % 5),
                    5, 5, 1, now()
                FROM (SELECT g, now() - make_interval(mins => ((g::bigint * 7919) % {minutes})::int) AS o
                      FROM generate_series({lo}, {hi}) g) s
                """)
            )
            conn.execute(
                sa.text(f"""
                INSERT INTO messages (instance_id, message_id, timestamp, conversation_id, contact_key, chat_jid,
                    direction, kind, text, status, edited, revoked, automated, sender_attendant_id, created_at)
                SELECT c.instance_id, c.opening_message_id || '-' || k, c.opened_at + k * interval '2 min', c.id,
                    c.contact_key, NULL, CASE WHEN k % 2 = 0 THEN 'inbound' ELSE 'outbound' END, 'text',
                    'mensagem de teste', 'read', false, false, false, NULL, now()
                FROM conversations c CROSS JOIN generate_series(0, 9) k
                WHERE c.id BETWEEN 'cv_' || lpad('{lo}', 12, '0') AND 'cv_' || lpad('{hi}', 12, '0')
                """)
            )
        print(f"  filled conversations {hi:,}/{n_conv:,}", flush=True)
    # What autovacuum does to a freshly loaded table in production: statistics for the planner and
    # the visibility map (index-only scans, no heap visits); VACUUM cannot run inside a transaction.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE conversations"))
        conn.execute(sa.text("VACUUM ANALYZE messages"))


# ------------------------------------------------------------------------------------------- queries
def _select_one(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1")).scalar()


def time_queries(engine: sa.Engine, n_conv: int, runs: int) -> dict[str, dict[str, float]]:
    scope = TenantScope("bench", "bench", "read-only", frozenset(f"bench-{i}" for i in range(INSTANCES)))
    rng = random.Random(7)
    now = datetime.now(UTC)
    workloads = {
        "baseline: SELECT 1 round trip": lambda: _select_one(engine),
        "queue (no first response)": lambda: ops_repo.no_first_response_queue(
            engine, scope, [f"bench-{rng.randrange(INSTANCES)}"], limit=50
        ),
        "SLA at risk": lambda: ops_repo.no_first_response_queue(
            engine,
            scope,
            [i := f"bench-{rng.randrange(INSTANCES)}"],
            opened_before={i: now - timedelta(minutes=12)},
            limit=50,
        ),
        "conversation list": lambda: ops_repo.list_conversations(
            engine, scope, ops_repo.ConversationFilter([f"bench-{rng.randrange(INSTANCES)}"]), limit=50
        ),
        "conversation list status=open": lambda: ops_repo.list_conversations(
            engine,
            scope,
            ops_repo.ConversationFilter([f"bench-{rng.randrange(INSTANCES)}"], status="open"),
            limit=50,
        ),
        "conversation detail + messages": lambda: (
            conv := ops_repo.get_conversation(engine, scope, f"cv_{rng.randrange(1, n_conv + 1):012d}"),
            ops_repo.list_messages(engine, scope, conv["id"], limit=50, conversation=conv),
        ),
    }
    out = {}
    for name, fn in workloads.items():
        for _ in range(100):  # warm the pool and caches (every instance's queue pages)
            fn()
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1000)
        out[name] = {"p50_ms": statistics.median(samples), "p99_ms": pct(samples, 99)}
    return out


# ------------------------------------------------------------------------------------------- bronze
def envelopes(instance: str, n_events: int, seed: int = 1) -> list[dict]:
    """A realistic mix: inbound, human replies, acks, ~10 % duplicate deliveries."""
    rng = random.Random(seed)
    out: list[dict] = []
    ts = BASE_TS
    n = 0
    while len(out) < n_events:
        n += 1
        ts += 1
        phone = f"5521{rng.randrange(10_000_000, 10_000_000 + max(50, n_events // 10)):08d}"
        from_me = rng.random() < 0.4
        mid = f"{instance}-{n}"
        body = {
            "event": "messages.upsert",
            "instance": instance,
            "data": {
                "key": {"remoteJid": f"{phone}@s.whatsapp.net", "fromMe": from_me, "id": mid},
                "pushName": "x",
                "status": "SERVER_ACK" if from_me else "DELIVERY_ACK",
                "message": {"conversation": "olá, tudo bem? preciso de ajuda com o pedido"},
                "messageType": "conversation",
                "messageTimestamp": ts,
                "instanceId": "bench",
                "source": "android",
            },
            "date_time": "2026-03-02T09:15:07.120Z",
            "apikey": None,
        }
        out.append(body)
        if rng.random() < 0.1:
            out.append(body)
        if from_me:
            out.append(
                {
                    "event": "messages.update",
                    "instance": instance,
                    "data": {"keyId": mid, "remoteJid": f"{phone}@s.whatsapp.net", "fromMe": True, "status": "READ"},
                }
            )
    return out[:n_events]


def bronze_rows(bodies: list[dict]) -> pa.Table:
    return envelopes_table(bodies)


def projector_throughput(engine: sa.Engine, lake: Lake, n_events: int) -> dict[str, float]:
    add_instance(engine, "bench-proj", "bench")
    ensure_tables(lake, WEBHOOK_EVENTS)
    bodies = envelopes("bench-proj", n_events)
    for i in range(0, len(bodies), 2000):
        lake.write(WEBHOOK_EVENTS, bronze_rows(bodies[i : i + 2000]))
    projector = Projector(lake, engine, Settings(projector_batch_rows=5000))
    t0 = time.perf_counter()
    applied = projector.run_once()
    elapsed = time.perf_counter() - t0

    # Baseline (the seed's design): one INSERT transaction per webhook, measured here on a sample.
    sample = bodies[: min(3000, len(bodies))]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS bench_seed_events (id bigserial PRIMARY KEY, "
                "instance text, event text, payload jsonb)"
            )
        )
    t1 = time.perf_counter()
    for body in sample:
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO bench_seed_events (instance, event, payload) VALUES (:i, :e, CAST(:p AS jsonb))"),
                {"i": body["instance"], "e": body["event"], "p": json.dumps(body)},
            )
    baseline_rate = len(sample) / (time.perf_counter() - t1)
    rate = applied / elapsed
    return {
        "events": applied,
        "seconds": elapsed,
        "events_per_s": rate,
        "seed_events_per_s": baseline_rate,
        "ratio_vs_seed": rate / baseline_rate,
    }


def live_latency(engine: sa.Engine, lake: Lake, rate: int, seconds: float) -> dict[str, float]:
    """Bronze group commits every 50 ms at ``rate`` events/s; latency = cursor covers the commit −
    the event's arrival (so it includes the group-commit wait, as with the receiver)."""
    add_instance(engine, "bench-live", "bench")
    bodies = envelopes("bench-live", int(rate * seconds) + rate, seed=3)
    settings = Settings(projector_poll_ms=20, projector_batch_rows=5000)
    stop = threading.Event()
    worker = threading.Thread(
        target=run_forever,
        kwargs={"lake": lake, "engine": engine, "settings": settings, "stop": stop.is_set},
        daemon=True,
    )
    # Start from the current end of bronze.
    Projector(lake, engine, settings).run_once()
    worker.start()
    commits: dict[int, list[float]] = {}  # version -> arrival times of its events
    visible: dict[int, float] = {}
    done = threading.Event()

    def observe() -> None:
        while not done.is_set() or len(visible) < len(commits):
            with engine.connect() as conn:
                v = conn.execute(
                    sa.select(projector_cursors.c.version).where(projector_cursors.c.name == WEBHOOK_CURSOR)
                ).scalar()
            now = time.perf_counter()
            for version in list(commits):
                if version not in visible and v is not None and v >= version:
                    visible[version] = now
            time.sleep(0.005)

    observer = threading.Thread(target=observe, daemon=True)
    observer.start()
    start = time.perf_counter()
    sent = 0
    pending: list[float] = []
    batch_bodies: list[dict] = []
    while time.perf_counter() - start < seconds:
        tick = time.perf_counter()
        due = int((tick - start) * rate)
        while sent < due:
            batch_bodies.append(bodies[sent])
            pending.append(start + sent / rate)  # when it "arrived" at the receiver
            sent += 1
        if batch_bodies:
            lake.write(WEBHOOK_EVENTS, bronze_rows(batch_bodies))
            commits[lake.version(WEBHOOK_EVENTS)] = pending
            batch_bodies, pending = [], []
        time.sleep(max(0.0, 0.05 - (time.perf_counter() - tick)))
    done.set()
    deadline = time.monotonic() + 60
    while len(visible) < len(commits) and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    worker.join(timeout=30)
    latencies = [visible[v] - t for v, arrivals in commits.items() if v in visible for t in arrivals]
    return {
        "events": sent,
        "achieved_rate": sent / seconds,
        "p50_s": statistics.median(latencies),
        "p95_s": pct(latencies, 95),
        "p99_s": pct(latencies, 99),
        "unseen_commits": len(commits) - len(visible),
    }


# ------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 1M conversations / 10M messages")
    parser.add_argument("--runs", type=int, default=300, help="samples per query")
    parser.add_argument("--events", type=int, default=60_000, help="events for the projector throughput")
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--reuse", metavar="DB", help="reuse a database kept by --keep (skips the fill)")
    parser.add_argument("--queries-only", action="store_true", help="skip projector and latency runs")
    args = parser.parse_args()

    name = args.reuse or f"beazap_bench_ops_{os.getpid()}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    if not args.reuse:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    n_conv = int(1_000_000 * args.scale)
    try:
        if args.reuse:
            with engine.connect() as conn:
                n_conv = conn.execute(
                    sa.text("SELECT count(*) FROM conversations WHERE id ~ '^cv_[0-9]{12}$'")
                ).scalar()
            print(f"reusing {name}: {n_conv:,} conversations")
        else:
            migrate.upgrade(engine)
            today = date.today()
            partitions.create_months(engine, date(today.year, today.month, 1) - timedelta(days=100), 8)
            print(f"filling {n_conv:,} conversations / {n_conv * 10:,} messages …", flush=True)
            t0 = time.perf_counter()
            fill(engine, n_conv)
            print(f"  fill took {time.perf_counter() - t0:.0f} s")
        print(f"\nqueries ({args.runs} runs each, target p99 ≤ 10 ms):")
        results = time_queries(engine, n_conv, args.runs)
        base = results.pop("baseline: SELECT 1 round trip")
        print(f"  {'baseline: SELECT 1 round trip':34s} p50 {base['p50_ms']:6.2f} ms   p99 {base['p99_ms']:6.2f} ms")
        for q, r in results.items():
            ok = "ok" if r["p99_ms"] <= 10 else "MISS"
            print(
                f"  {q:34s} p50 {r['p50_ms']:6.2f} ms   p99 {r['p99_ms']:6.2f} ms   {ok}   "
                f"(p50 {r['p50_ms'] / base['p50_ms']:.1f}× baseline)"
            )
        if args.queries_only:
            return
        with tempfile.TemporaryDirectory(prefix="ops-", dir=scratch_root()) as tmp:
            lake = Lake(str(Path(tmp) / "lake"))
            t = projector_throughput(engine, lake, args.events)
            print(
                f"\nprojector: {t['events']:,} events in {t['seconds']:.1f} s = {t['events_per_s']:,.0f} events/s "
                f"(target ≥ 5,000); seed design (1 INSERT tx per webhook) {t['seed_events_per_s']:,.0f}/s "
                f"→ ratio {t['ratio_vs_seed']:.1f}×"
            )
            lat = live_latency(engine, lake, args.rate, args.seconds)
            print(
                f"webhook→visible at {lat['achieved_rate']:.0f} events/s ({lat['events']:,} events): "
                f"p50 {lat['p50_s'] * 1000:.0f} ms, p95 {lat['p95_s'] * 1000:.0f} ms, p99 {lat['p99_s'] * 1000:.0f} ms "
                f"(target p95 ≤ 1 s); unseen commits {lat['unseen_commits']}"
            )
    finally:
        engine.dispose()
        if not args.keep and not args.reuse:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
