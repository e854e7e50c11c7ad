"""Benchmark: LGPD erasure, its verification, retention and compaction on a simulated lake.

    uv run python -m benchmarks.governance [--instances 4 --days 30 --per-day 120]

Builds bronze with the simulator, silver, the live store and gold, then times (the baseline is a
full silver rebuild measured in the same run):
- erasing the busiest contact (every layer + ops store + targeted vacuum) and verifying it;
- a retention dry run and an hourly compaction + checkpoint of every table.
Prints a table of seconds and ratios to the baseline, and checks the aggregates did not move.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from datetime import date

import duckdb

from benchmarks.workdir import scratch_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=float, default=120.0, help="conversations per instance per weekday")
    args = parser.parse_args()

    home = scratch_dir("governance-")
    os.environ["BEAZAP_LAKE_URI"] = str(home / "lake")
    os.environ["BEAZAP_DATABASE_URL"] = f"sqlite:///{home / 'ops.db'}"
    os.environ["BEAZAP_SECRET_KEY_FILE"] = str(home / "secret.key")
    os.environ.setdefault("BEAZAP_LOG_LEVEL", "WARNING")

    from core.logging import configure_logging
    from core.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    configure_logging(settings.log_level)

    from beazap.simulator import SimulationConfig, register_instances, simulate, write_bronze
    from gold.runner import build_gold
    from governance import erasure, retention
    from live.projector import run_once
    from silver.pipeline import build_silver
    from storage import maintenance, migrate
    from storage.db import get_engine
    from storage.lake import Lake

    lake = Lake.from_settings(settings)
    engine = get_engine(settings)
    migrate.upgrade(engine)
    sim = simulate(
        SimulationConfig(
            seed=11,
            instances=args.instances,
            days=args.days,
            start=date(2026, 3, 2),
            conversations_per_day=args.per_day,
        )
    )
    register_instances(engine, sim)
    write_bronze(lake, sim)
    build_silver(lake)
    run_once(lake, engine)
    build_gold(lake, engine=engine)

    def aggregates() -> tuple:
        con = duckdb.connect()
        con.register("v", maintenance.read_table(lake, "gold/daily_volume", columns=["messages"]))
        con.register("f", maintenance.read_table(lake, "gold/conversation_facts", columns=["conversation_id"]))
        con.register("m", maintenance.read_table(lake, "silver/messages", columns=["message_id"]))
        return con.execute(
            "select (select sum(messages) from v), (select count(*) from f), (select count(*) from m)"
        ).fetchone()

    con = duckdb.connect()
    con.register("m", maintenance.read_table(lake, "silver/messages", columns=["contact_phone"]))
    phone, busiest = con.execute(
        "select contact_phone, count(*) from m where contact_phone is not null group by 1 order by 2 desc limit 1"
    ).fetchone()
    bronze_rows = maintenance.count_rows(lake, "bronze/webhook_events")
    silver_msgs = aggregates()[2]
    before = aggregates()

    t = time.perf_counter()
    build_silver(lake, full=True)
    baseline = time.perf_counter() - t

    rows: list[tuple[str, float]] = [("baseline: full silver rebuild", baseline)]
    t = time.perf_counter()
    report = erasure.erase_contact(lake, engine, phone, requested_by="benchmark")
    rows.append(
        (f"erase 1 contact ({busiest} messages, {sum(report.lake.values())} lake rows)", time.perf_counter() - t)
    )
    t = time.perf_counter()
    verified = erasure.verify_erasure(lake, engine, phone)
    rows.append(("verify (every file of every table + ops store)", time.perf_counter() - t))
    t = time.perf_counter()
    retention.run(lake, engine, dry_run=True, settings=settings)
    rows.append(("retention dry run", time.perf_counter() - t))
    t = time.perf_counter()
    maintenance.maintain(lake)
    rows.append(("compaction + checkpoint of every table", time.perf_counter() - t))
    after = aggregates()

    print(
        f"\nlake: {bronze_rows:,} bronze webhooks, {silver_msgs:,} silver messages; "
        f"{args.instances} instances × {args.days} days"
    )
    print(f"{'step':60} {'seconds':>9} {'× baseline':>11}")
    for name, seconds in rows:
        print(f"{name:60} {seconds:9.2f} {seconds / baseline:11.2f}")
    print(f"verification clean: {verified.clean}; aggregates unchanged: {before == after} {after}")
    if not verified.clean:
        print("left:", [(h["table"], h["kind"], h["referenced"]) for h in verified.lake], verified.store)
    if os.environ.get("BZ_KEEP"):
        print("kept", home, "phone", phone)
    else:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
