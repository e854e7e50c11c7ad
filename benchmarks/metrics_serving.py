"""Benchmark: metrics API start-up, memory per worker and endpoint latency at 1M / 10M / 30M messages.

    uv run python -m benchmarks.metrics_serving --scale 1.0 --lake .beazap/bench-10m   # ~10M messages
    uv run python -m benchmarks.metrics_serving --scale 3.0 --lake .beazap/bench-30m   # ~30M messages

1. When ``--lake`` holds no gold yet, generates a simulated year of silver with the metrics benchmark's
   DuckDB generator (``benchmarks.metrics.generate``/``write_silver``) and builds gold with
   ``gold.runner.build_gold`` (timed: the full rebuild). A kept lake is reused as is (``--rebuild``
   times the full rebuild again over it). Then builds the serving store of that gold
   (``gold.serving.store.ensure``, timed; nothing to do when it exists).
2. Starts ``--workers`` API processes at once (the real app under uvicorn, metrics cache off, gold
   loaded eagerly as in ``benchmarks.metrics.bench_app``) and records, per worker, the seconds until it
   answers and its memory: RSS, and USS/PSS (``/proc/<pid>/smaps_rollup``: memory only this process
   holds, and its fair share of pages shared with the other workers, e.g. a memory-mapped file).
3. Times the dashboard's queries (``benchmarks.metrics.api_paths``: hourly volume 30 days, volume by
   month for a year, today's overview, daily SLA for 90 days, attendant ranking for a month) plus a
   people-filtered overview (the SQL path), over rotating instances, spread over the workers; prints
   p50/p99 per query and the memory of every worker after the timed phase. With ``--baseline DIR`` (another
   source tree, e.g. the previous serving design from ``git archive``), its workers are started first and
   every request is sent to both, interleaved, so load changes hit both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx

from benchmarks.metrics import YEAR_START, api_paths, generate, percentile, serve, write_silver


def memory(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (private clean + dirty) of ``pid`` in MiB."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1])
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {"rss": fields.get("Rss", 0) / 1024, "pss": fields.get("Pss", 0) / 1024, "uss": uss / 1024}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare_lake(root: Path, scale: float, instances: int, days: int, rebuild: bool) -> tuple[Any, Any, datetime]:
    from core.settings import Settings
    from gold.runner import build_gold
    from storage import migrate
    from storage.db import make_engine
    from storage.instances import add_instance
    from storage.lake import Lake

    root.mkdir(parents=True, exist_ok=True)
    os.environ["BEAZAP_SECRET_KEY_FILE"] = str(root / "secret.key")
    settings = Settings(lake_uri=str(root / "lake"), database_url=f"sqlite:///{root / 'ops.db'}")
    lake = Lake.from_settings(settings)
    engine = make_engine(settings.database_url)
    end_ts = datetime.combine(YEAR_START + timedelta(days=days), datetime.min.time(), UTC) + timedelta(hours=3)
    fresh = not lake.exists("gold/conversation_facts")
    if fresh:
        con = duckdb.connect()
        con.execute("set TimeZone = 'UTC'")
        t0 = time.perf_counter()
        generate(con, instances, days, max(1, round(55 * scale)))
        n_msg = con.execute("select count(*) from msg").fetchall()[0][0]
        write_silver(con, lake)
        con.close()
        print(f"silver: {n_msg:,} messages generated and written in {time.perf_counter() - t0:.1f} s")
        migrate.upgrade(engine)
        for i in range(instances):
            add_instance(engine, f"inst-{i:03d}", "bench", token=f"t-{i}")
    if fresh or rebuild:
        t0, c0 = time.perf_counter(), time.process_time()
        stats = build_gold(lake, engine=engine, settings=settings, as_of=end_ts)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        sizes = ", ".join(f"{k}={v['rows']:,} ({v['seconds']:.1f} s)" for k, v in stats.items())
        print(
            f"gold full rebuild: {wall:.1f} s wall, {cpu:.1f} s CPU; load {os.getloadavg()[0]:.2f} ({sizes})",
            flush=True,
        )
    from gold.runner import GOLD_TABLES
    from gold.serving import store

    versions = {t: lake.version(f"gold/{t}") for t in GOLD_TABLES}
    t0, c0 = time.perf_counter(), time.process_time()
    folder = store.ensure(lake, versions)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20
    print(
        f"serving store ready in {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU "
        f"(0 when already built; {size:.0f} MiB); load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    return settings, engine, end_ts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="Fraction of the ~10M-message year.")
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--lake", type=Path, required=True, help="Folder of the lake and ops store (kept).")
    parser.add_argument("--rebuild", action="store_true", help="Time a full gold rebuild over a kept lake.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=200, help="Timed requests per query.")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="Source tree of another version (e.g. `git archive <commit>` unpacked): its workers are "
        "started first and timed request by request against this tree's.",
    )
    parser.add_argument("--baseline-workers", type=int, default=1)
    args = parser.parse_args()

    settings, engine, _ = prepare_lake(args.lake.resolve(), args.scale, args.instances, args.days, args.rebuild)
    from storage.tokens import create_token

    token = create_token(engine, "bench", "read-only")
    engine.dispose()
    workdir = args.lake.resolve()
    env = {"BEAZAP_LAKE_URI": settings.lake_uri, "BEAZAP_DATABASE_URL": settings.database_url}
    env["BEAZAP_LOG_LEVEL"] = "WARNING"
    groups: dict[str, list[tuple[Any, str, float]]] = {}
    try:
        if args.baseline is not None:
            groups["baseline"] = start_workers(env, workdir, args.baseline_workers, "baseline", args.baseline.resolve())
        groups["this tree"] = start_workers(env, workdir, args.workers, "worker", None)
        last_day = YEAR_START + timedelta(days=args.days - 1)
        bases = {name: [b for _, b, _ in servers] for name, servers in groups.items()}
        results = time_queries(bases, token, last_day, args.instances, args.requests)
        print(f"\nload average after the timed phase: {os.getloadavg()[0]:.2f}")
        print(f"{'query':30} " + " ".join(f"{n + ' p50':>16} {'p99':>8}" for n in bases))
        for name, by_group in results.items():
            print(f"{name:30} " + " ".join(f"{p50:14.2f}ms {p99:6.2f}ms" for p50, p99 in by_group.values()))
        for name, servers in groups.items():
            for k, (proc, _, _) in enumerate(servers):
                m = memory(proc.pid)
                print(f"{name} worker {k} after the queries: RSS {m['rss']:.0f} MiB, PSS {m['pss']:.0f} MiB, ", end="")
                print(f"USS {m['uss']:.0f} MiB")
    finally:
        for servers in groups.values():
            for proc, _, _ in servers:
                proc.terminate()
                proc.wait(timeout=30)


def start_workers(
    env: dict[str, str], workdir: Path, n: int, name: str, cwd: Path | None
) -> list[tuple[Any, str, float]]:
    """Start ``n`` workers at once; print each one's seconds until it answered and its memory."""
    import concurrent.futures as cf

    print(f"load average before starting {name}s: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)

    def start(k: int) -> tuple[Any, str, float, float]:
        t = time.perf_counter()
        proc, base = serve(env, workdir, name=f"{name}-{k}", cwd=cwd)
        return proc, base, time.perf_counter() - t, cpu_seconds(proc.pid)

    with cf.ThreadPoolExecutor(n) as pool:
        started = list(pool.map(start, range(n)))
    servers = [(proc, base, seconds) for proc, base, seconds, _ in started]
    for k, (proc, _, seconds, cpu) in enumerate(started):
        m = memory(proc.pid)
        print(
            f"{name} {k}: answered after {seconds:.1f} s wall, {cpu:.1f} s CPU; RSS {m['rss']:.0f} MiB, "
            f"PSS {m['pss']:.0f} MiB, USS {m['uss']:.0f} MiB",
            flush=True,
        )
    return servers


def time_queries(
    bases: dict[str, list[str]], token: str, last_day: date, instances: int, requests: int
) -> dict[str, dict[str, tuple[float, float]]]:
    """p50/p99 per query and group of workers, requests interleaved between the groups (same instance
    each round) and spread over each group's workers."""
    paths = api_paths(last_day)
    d30 = (last_day - timedelta(days=29)).isoformat()
    paths["overview_30d_team_filter"] = lambda i: (
        f"/v1/metrics/overview?instance_id={i}&team_id={i}-team1&from={d30}&to={last_day.isoformat()}"
    )
    ids = [f"inst-{i:03d}" for i in range(instances)]
    headers = {"Authorization": f"Bearer {token}"}
    clients = {g: [httpx.Client(base_url=b, headers=headers, timeout=120) for b in bs] for g, bs in bases.items()}
    out: dict[str, dict[str, tuple[float, float]]] = {}
    try:
        for name, path in paths.items():
            times: dict[str, list[float]] = {g: [] for g in clients}
            for group in clients.values():
                for c in group:
                    c.get(path(ids[0])).raise_for_status()
            for k in range(requests):
                for g, group in clients.items():
                    client = group[k % len(group)]
                    t = time.perf_counter()
                    r = client.get(path(ids[k % len(ids)]))
                    times[g].append((time.perf_counter() - t) * 1000)
                    r.raise_for_status()
            out[name] = {g: (statistics.median(ts), percentile(ts, 0.99)) for g, ts in times.items()}
    finally:
        for group in clients.values():
            for c in group:
                c.close()
    return out


if __name__ == "__main__":
    main()
