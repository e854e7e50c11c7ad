"""Live SLA clocks on a business-hours basis vs calendar time (``python -m benchmarks.live_sla``).

The live lists (``/v1/sla/*``, ``/v1/conversations``) compute every returned conversation's clocks in
Python (``live.sla.clocks``). Calendar targets are a subtraction; business targets walk the
instance's schedule day by day (``core.instance_config.BusinessCalendar``). This measures the time
per page of conversations for both, in the same run, and reports business / calendar as a ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from core.instance_config import InstanceConfig
from live.sla import SlaPolicy, clocks

NOW = datetime(2026, 12, 7, 15, tzinfo=UTC)
POLICIES = {
    "calendar (baseline)": {
        "first_response": {"minutes": 15, "basis": "calendar"},
        "resolution": {"minutes": 1440, "basis": "calendar"},
    },
    "default (FRT business, resolution calendar)": {},
    "all business": {
        "first_response": {"minutes": 15, "basis": "business"},
        "resolution": {"minutes": 1440, "basis": "business"},
    },
}


def page(rows: int, spread_days: float) -> list[dict]:
    step = timedelta(days=spread_days) / rows
    return [
        {"status": "open", "origin": "inbound", "first_response_at": None, "awaiting_since": None,
         "opened_at": NOW - step * i}
        for i in range(rows)
    ]  # fmt: skip


def measure(policy: dict, rows: list[dict], runs: int) -> float:
    """Median ms to compute the clocks of ``rows`` with a fresh policy (cold calendar cache) each run."""
    times = []
    for _ in range(runs):
        rule = SlaPolicy.of(InstanceConfig(timezone="America/Recife", sla_policy=policy))
        started = time.perf_counter()
        for row in rows:
            clocks(row, rule, NOW)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100, help="conversations per page (the /v1/sla/* default)")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    for spread in (7, 60):
        rows = page(args.rows, spread)
        base = measure(POLICIES["calendar (baseline)"], rows, args.runs)
        for name, policy in POLICIES.items():
            ms = measure(policy, rows, args.runs)
            print(f"opened over {spread:>2} days  {name:<45} {ms:6.2f} ms / {args.rows} rows  ×{ms / base:5.1f}")


if __name__ == "__main__":
    main()
