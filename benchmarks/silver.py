"""Silver benchmark: full rebuild and a 10k-event incremental batch on bronze lakes of 1M and 10M events.

    python -m benchmarks.silver                      # 1M and 10M message events
    python -m benchmarks.silver --sizes 1000000      # only 1M
    python -m benchmarks.silver --keep benchmarks/.work/lakes    # keep (and reuse) the generated lakes
    python -m benchmarks.silver --chunk-rows 0 2000000           # one-pass and chunked full rebuilds

For each size: the simulator's bulk mode writes the bronze lake (one commit per simulated day, 20 days
in one month), then, each phase in its own process so peak RSS is per phase:

1. **bare scan** — DuckDB reads bronze and only parses the payloads (7 JSON fields): the floor;
2. **full rebuild** — ``build_silver(lake, full=True)``: seconds, events/s, peak RSS, ratio to (1); once
   per ``--chunk-rows`` value (``BEAZAP_SILVER_REBUILD_CHUNK_ROWS``: bronze rows per window, 0 = one
   pass), default the setting's default;
3. **incremental** — 10k more webhooks (rich simulator: acks, edits, reactions, LIDs…) in the same
   month are appended to bronze and ``build_silver(lake)`` runs; the ratio between the two lake sizes
   shows whether the cost grows with the batch or with the history.

Targets (issue 16, 2-core machine): 10M full ≤ 60 s and ≤ 2.5 GiB peak RSS; 30M full ≤ 3.2× the 10M
time at the same peak RSS; incremental 10k ≤ 3 s on the biggest lake.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import time
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.workdir import scratch_dir

BULK_DAYS = 20
BULK_START = date(2026, 3, 1)
INC_START = date(2026, 3, 21)  # the day after the bulk lake: same month partition as the history
INC_EVENTS = 10_000
WEBHOOK_EVENTS_TABLE = "bronze/webhook_events"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _in_child(fn: Any, *args: Any) -> dict[str, Any]:
    """Run ``fn(*args)`` in a fresh process; returns its result plus ``peak_rss_mib``."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_child_main, (fn, args))


def _child_main(fn: Any, args: tuple[Any, ...]) -> dict[str, Any]:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    out = fn(*args)
    out["peak_rss_mib"] = round(_peak_rss_mib(), 1)
    return out


# --- phases (run in children) ---------------------------------------------------------------------


def generate(root: str, size: int) -> dict[str, Any]:
    from beazap.simulator import SimulationConfig
    from beazap.simulator.bulk import write_bronze_bulk
    from storage.lake import Lake

    lake = Lake(root=root)
    started = time.perf_counter()
    cfg = SimulationConfig(seed=7, instances=4, days=BULK_DAYS, start=BULK_START)
    result = write_bronze_bulk(lake, cfg, target_events=size)
    return {"seconds": round(time.perf_counter() - started, 2), "rows": int(result.get("webhook_events", size))}


def bare_scan(root: str) -> dict[str, Any]:
    import duckdb

    from bronze.schema import WEBHOOK_EVENTS
    from storage.lake import Lake

    lake = Lake(root=root)
    con = duckdb.connect()
    con.register("b", lake.dataset(WEBHOOK_EVENTS))
    started = time.perf_counter()
    rows, parsed = con.execute(
        """
        select count(*), count(x[3]) from (
            select json_extract_string(payload, ['$.event', '$.instance', '$.data.key.id', '$.data.key.remoteJid',
                                                 '$.data.key.fromMe', '$.data.messageTimestamp', '$.data.status']) x
            from b)
        """
    ).fetchall()[0]
    return {"seconds": round(time.perf_counter() - started, 2), "rows": rows, "parsed": parsed}


def full_rebuild(root: str, chunk_rows: int | None = None) -> dict[str, Any]:
    from core.settings import get_settings
    from silver import chunks
    from silver.pipeline import build_silver
    from storage.lake import Lake

    settings = get_settings()
    if chunk_rows is not None:
        settings = settings.model_copy(update={"silver_rebuild_chunk_rows": chunk_rows})
    lake = Lake(root=root)
    windows = len(chunks.plan(lake.open(WEBHOOK_EVENTS_TABLE), settings.silver_rebuild_chunk_rows))
    cpu = time.process_time()
    started = time.perf_counter()
    stats = build_silver(lake, full=True, settings=settings)
    return {
        "chunk_rows": settings.silver_rebuild_chunk_rows,
        "windows": windows,
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "messages": stats["silver/messages"]["rows_total"],
        "conversations": stats["silver/conversations"]["rows_total"],
    }


def append_increment(root: str, seed: int) -> dict[str, Any]:
    from beazap.simulator import SimulationConfig, bronze_table, simulate
    from beazap.simulator.sinks import append_ops, append_webhooks
    from storage.lake import Lake

    lake = Lake(root=root)
    # the rich simulator sends ≈ 5 webhooks per conversation: 600 a day give 12-13k, cut to the first 10k
    sim = simulate(SimulationConfig(seed=seed, instances=4, days=1, start=INC_START, conversations_per_day=600))
    deliveries = sim.deliveries[:INC_EVENTS]
    if len(deliveries) < INC_EVENTS:
        raise RuntimeError(f"increment has {len(deliveries)} webhooks, fewer than {INC_EVENTS}")
    append_webhooks(lake, bronze_table(deliveries, seq_base=10**9))
    last = deliveries[-1].received_at
    append_ops(lake, [r for r in sim.ops_events if r["occurred_at"] <= last])
    return {"rows": len(deliveries)}


def incremental(root: str) -> dict[str, Any]:
    from silver.pipeline import build_silver
    from storage.lake import Lake

    started = time.perf_counter()
    stats = build_silver(Lake(root=root))
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "messages_written": stats["silver/messages"]["rows_written"],
        "conversations_written": stats["silver/conversations"]["rows_written"],
    }


# --- driver ---------------------------------------------------------------------------------------


def gold_build(root: str) -> dict[str, Any]:
    """``build_gold`` over the silver just built (for its time and its size on disk)."""
    from datetime import UTC, datetime

    from gold.runner import build_gold
    from storage.lake import Lake

    cpu = time.process_time()
    started = time.perf_counter()
    build_gold(Lake(root=root), as_of=datetime(INC_START.year, INC_START.month, INC_START.day, tzinfo=UTC))
    return {"seconds": round(time.perf_counter() - started, 2), "cpu_seconds": round(time.process_time() - cpu, 1)}


def sizes_on_disk(root: str) -> dict[str, Any]:
    """MiB of the live data files of each layer (Delta add actions, not old versions)."""
    from deltalake import DeltaTable

    out: dict[str, Any] = {}
    for layer in ("bronze", "silver", "gold"):
        total = 0
        base = Path(root) / layer
        for log in base.glob("*/_delta_log") if base.exists() else []:
            actions = DeltaTable(str(log.parent)).get_add_actions(flatten=True)
            total += sum(int(v or 0) for v in actions.column("size_bytes").to_pylist())
        out[layer] = round(total / 2**20, 1)
    return out


def run(
    sizes: list[int],
    keep: str | None,
    chunk_values: list[int | None],
    incremental_on: bool = True,
    gold_on: bool = False,
) -> list[dict[str, Any]]:
    base = Path(keep) if keep else scratch_dir("silver-")
    results = []
    for size in sizes:
        root = base / f"lake-{size}"
        row: dict[str, Any] = {"size": size}
        if not (root / "bronze" / "webhook_events").exists():
            shutil.rmtree(root, ignore_errors=True)
            row["generate"] = _in_child(generate, str(root), size)
            print(f"[{size:,}] bronze generated: {row['generate']}", flush=True)
        row["bare"] = _in_child(bare_scan, str(root))
        print(f"[{size:,}] bare DuckDB parse: {row['bare']}", flush=True)
        row["full"] = []
        for chunk_rows in chunk_values:
            row["full"].append(_in_child(full_rebuild, str(root), chunk_rows))
            print(f"[{size:,}] full rebuild: {row['full'][-1]}", flush=True)
        if gold_on:
            row["gold"] = _in_child(gold_build, str(root))
            print(f"[{size:,}] gold full build: {row['gold']}", flush=True)
        row["sizes_mib"] = _in_child(sizes_on_disk, str(root))
        print(f"[{size:,}] size on disk (MiB): {row['sizes_mib']}", flush=True)
        if incremental_on:
            _in_child(append_increment, str(root), 1000 + size % 997)
            row["inc"] = _in_child(incremental, str(root))
            print(f"[{size:,}] incremental {INC_EVENTS:,} events: {row['inc']}", flush=True)
        results.append(row)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    _report(results)
    return results


def _report(results: list[dict[str, Any]]) -> None:
    print(
        "\n| bronze events | chunk rows (windows) | full rebuild | CPU s | events/s | peak RSS | bare parse "
        "| full/bare | incremental 10k | inc RSS |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        rows = r["bare"]["rows"]
        bare_s = r["bare"]["seconds"]
        inc = r.get("inc")
        inc_cells = f"{inc['seconds']:.2f} s | {inc['peak_rss_mib'] / 1024:.2f} GiB" if inc else "– | –"
        for f in r["full"]:
            print(
                f"| {rows:,} | {f['chunk_rows']:,} ({f['windows']}) | {f['seconds']:.1f} s | {f['cpu_seconds']:.0f} "
                f"| {rows / f['seconds']:,.0f} | {f['peak_rss_mib'] / 1024:.2f} GiB | {bare_s:.1f} s "
                f"| {f['seconds'] / bare_s:.2f} | {inc_cells} |"
            )
        per_m = {k: round(v / (rows / 1e6), 1) for k, v in r["sizes_mib"].items() if k != "peak_rss_mib"}
        print(f"size on disk per million bronze events (MiB): {per_m}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--keep", help="folder for the generated lakes (kept and reused)")
    parser.add_argument(
        "--chunk-rows", type=int, nargs="+", help="full rebuilds to run: bronze rows per window (0 = one pass)"
    )
    parser.add_argument("--no-incremental", action="store_true", help="skip the 10k-webhook incremental phase")
    parser.add_argument("--gold", action="store_true", help="also build gold (time, and its size on disk)")
    args = parser.parse_args(argv)
    run(
        args.sizes,
        args.keep,
        args.chunk_rows or [None],
        incremental_on=not args.no_incremental,
        gold_on=args.gold,
    )


if __name__ == "__main__":
    main()
