"""Profile of a gold full rebuild: wall and CPU seconds of each phase of ``gold.runner.build_gold``.

    uv run python -m benchmarks.gold_profile --lake .beazap/bench-10m/lake   # a lake with silver (e.g. kept
                                                                              # by benchmarks.metrics_serving)

Runs the same phases as ``build_gold`` over the lake's silver, each timed on its own: ``prepare``
(silver read into DuckDB, configuration), every work step and gold table of ``compute`` (the SQL),
then every ``write_days`` (the Delta write of a full rebuild), and prints them sorted by wall time
with their share of the whole, the process's peak RSS and the load average. The gold tables are
rewritten (same content as a full rebuild with the same as-of).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from benchmarks.metrics import YEAR_START


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", type=Path, required=True)
    parser.add_argument("--days", type=int, default=365, help="Days the generated year spans (sets the as-of).")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    from gold.runner import DAY_COLUMNS, GOLD_TABLES, WORK_STEPS, WORK_TABLE_NAMES, prepare, sql_text, write_days
    from storage.lake import Lake

    lake = Lake(root=str(args.lake.resolve()))
    as_of = datetime.combine(YEAR_START + timedelta(days=args.days), datetime.min.time(), UTC) + timedelta(hours=3)
    phases: list[tuple[str, float, float]] = []

    def timed(name: str, fn: object) -> object:
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()  # type: ignore[operator]
        phases.append((name, time.perf_counter() - t0, time.process_time() - c0))
        return out

    load0 = os.getloadavg()[0]
    con = timed("prepare (silver into DuckDB)", lambda: prepare(lake, as_of=as_of, threads=args.threads))
    for step in WORK_STEPS:
        name = WORK_TABLE_NAMES.get(step, step)
        timed(f"work.{name}", lambda s=step, n=name: con.execute(f"create or replace table work.{n} as {sql_text(s)}"))
    for table in GOLD_TABLES:
        timed(f"gold.{table}", lambda t=table: con.execute(f"create or replace table gold.{t} as {sql_text(t)}"))
    first = date(1970, 1, 1)
    for table in GOLD_TABLES:
        where = f"{DAY_COLUMNS[table]} >= date '{first}'"
        timed(f"write gold/{table}", lambda t=table, w=where: write_days(con, lake, t, w))
    con.close()
    wall = sum(p[1] for p in phases)
    cpu = sum(p[2] for p in phases)
    print(f"{'phase':40} {'wall s':>8} {'CPU s':>8} {'share':>6}")
    for name, w, c in sorted(phases, key=lambda p: -p[1]):
        print(f"{name:40} {w:8.2f} {c:8.2f} {w / wall:6.1%}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{'total':40} {wall:8.2f} {cpu:8.2f}; peak RSS {peak:.2f} GiB")
    print(f"load average: {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end, on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
