"""Benchmark: a gold run for one daily partition (or a range, or the latest with late data) vs a full rebuild.

    uv run python -m benchmarks.gold_partitions                 # 50 instances × 365 days, 25 % scale
    uv run python -m benchmarks.gold_partitions --scale 1.0     # the full simulated year (~10M messages)

Generates a simulated year of silver with the metrics benchmark's DuckDB generator, builds gold
once (the first write), then times, all with the same as-of instant and against the full rebuild
measured in the same run (the baseline):

1. a full rebuild (every day replaced);
2. one partition in the middle of the year (``days=(d, d)``);
3. the latest partition with ``refresh_changed`` and nothing changed (what every automation run
   after a quiet silver run costs);
4. the same after one late message 100 days back (the late day found and replaced);
5. a single-run backfill of 30 days.

For each: wall and CPU seconds, the ratio to the full rebuild, and Delta files added/removed and
bytes added over the gold tables (live files before vs after). The computation is the
same in every case (gold is a function of all of silver); what differs is what is compared and
rewritten.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from benchmarks.workdir import scratch_dir


def _files(lake: Any, tables: tuple[str, ...]) -> dict[str, int]:
    """Every live data file of the gold tables with its size in bytes."""
    out: dict[str, int] = {}
    for table in tables:
        dt = lake.open_or_none(f"gold/{table}")
        if dt is not None:
            actions = pa.table(dt.get_add_actions(flatten=True))
            paths, sizes = actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist()
            out.update({f"{table}/{path}": int(size) for path, size in zip(paths, sizes, strict=True)})
    return out


def _timed(label: str, lake: Any, tables: tuple[str, ...], run: Callable[[], dict]) -> dict[str, Any]:
    before = _files(lake, tables)
    t0, c0 = time.perf_counter(), time.process_time()
    stats = run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    late = sorted({d for s in stats.values() for d in s.get("late_days", [])})
    rows = sum(s["rows"] for s in stats.values())
    result = {"label": label, "wall": wall, "cpu": cpu, "rows": rows, "late": late}
    after = _files(lake, tables)
    added = set(after) - set(before)
    result.update(added=len(added), removed=len(set(before) - set(after)), bytes=sum(after[f] for f in added))
    print(f"{label}: {wall:.1f} s wall, {cpu:.1f} s CPU, {rows:,} rows written, late days {late or '-'}", flush=True)
    return result


def _late_message(lake: Any, day: date) -> None:
    """Append a copy of one message of ``day`` (UTC) with a new id: a webhook that arrived late."""
    from storage.maintenance import read_table

    con = duckdb.connect()
    con.register("m", read_table(lake, "silver/messages"))
    one: pa.Table = con.sql(
        f"select * from m where event_at::date = '{day.isoformat()}' and direction = 'inbound' limit 1"
    ).to_arrow_table()
    one = one.set_column(one.schema.get_field_index("message_id"), "message_id", pa.array(["late-bench-1"]))
    lake.write("silver/messages", one.cast(pa.schema(lake.open("silver/messages").schema().to_arrow())), mode="append")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.25, help="Fraction of the full year's conversations.")
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()

    workdir = scratch_dir("gold-partitions-")
    os.environ["BEAZAP_SECRET_KEY_FILE"] = str(workdir / "secret.key")
    from benchmarks.metrics import YEAR_START, generate, write_silver
    from core.settings import Settings
    from gold.runner import GOLD_TABLES, build_gold
    from storage import migrate
    from storage.db import make_engine
    from storage.instances import add_instance
    from storage.lake import Lake

    settings = Settings(lake_uri=str(workdir / "lake"), database_url=f"sqlite:///{workdir / 'ops.db'}")
    lake = Lake.from_settings(settings)
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    generate(con, args.instances, args.days, max(1, round(55 * args.scale)))
    n_msg = con.execute("select count(*) from msg").fetchall()[0][0]
    write_silver(con, lake)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    for i in range(args.instances):
        add_instance(engine, f"inst-{i:03d}", "bench", token=f"t-{i}")
    as_of = datetime.combine(YEAR_START + timedelta(days=args.days), datetime.min.time(), UTC) + timedelta(hours=3)
    today = (as_of - timedelta(hours=3)).date()  # the last simulated day, São Paulo time
    mid = YEAR_START + timedelta(days=args.days // 2)
    print(f"{n_msg:,} silver messages, {args.instances} instances, {args.days} days; as of {as_of:%Y-%m-%d %H:%M}Z")

    def build(**kwargs: Any) -> Callable[[], dict]:
        return lambda: build_gold(lake, engine=engine, settings=settings, as_of=as_of, **kwargs)

    tables = GOLD_TABLES
    latest = build(days=(today, None), refresh_changed=True)
    _timed("first build (creates gold)", lake, tables, build())
    runs = [
        _timed("full rebuild (baseline)", lake, tables, build()),
        _timed(f"one partition ({mid})", lake, tables, build(days=(mid, mid))),
        _timed("latest partition + refresh, nothing late", lake, tables, latest),
    ]
    late_day = today - timedelta(days=100)
    _late_message(lake, late_day)
    runs.append(
        _timed(
            f"latest partition + refresh, one late message (UTC {late_day})",
            lake,
            tables,
            latest,
        )
    )
    runs.append(_timed("backfill of 30 days (one run)", lake, tables, build(days=(mid, mid + timedelta(days=29)))))
    base = runs[0]
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| run | wall s | CPU s | × full (wall) | rows written | files +/− | MB written | late days |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in runs:
        print(
            f"| {r['label']} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['wall'] / base['wall']:.2f} | {r['rows']:,} "
            f"| +{r['added']}/−{r['removed']} | {r['bytes'] / 1e6:.1f} | {', '.join(r['late']) or '–'} |"
        )
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
