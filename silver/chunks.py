"""Time windows of bronze for a chunked full silver rebuild.

A full rebuild of a large lake runs as a sequence of silver runs, one per window of bronze receipt
time (``received_at``): the first window is built like a full rebuild, every later one like an
incremental run over the rows received in it. What crosses a window boundary — open conversations,
LID ↔ phone mappings, stub rows holding acks/edits/reactions for messages not seen yet, the
watermarks — is exactly what an incremental run already reads back from silver itself, so peak
memory follows the window, not the lake, and the result is the one-pass result (folding is
associative and idempotent; ``tests/test_silver_chunks.py`` checks it).

Windows are planned from the Delta log alone (rows, min and max ``received_at`` of every file,
grouped by the ``received_date`` partition): whole days are grouped up to ``chunk_rows``; a day with
more rows is cut into equal time slices. No bronze data is read to plan.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Window:
    """Bronze rows with ``lo <= received_at < hi`` (``None``: unbounded on that side)."""

    lo: datetime | None
    hi: datetime | None

    def bronze_filter(self) -> pc.Expression | None:
        """Filter for bronze/webhook_events: the receipt-time range plus its ``received_date``
        partitions (so the scan skips other days' files)."""
        return _range("received_at", "received_date", self.lo, self.hi)

    def ops_filter(self) -> pc.Expression | None:
        """Filter for bronze/ops_events: the same range on ``occurred_at`` (any split of the action
        log gives the same silver; every action falls in exactly one window)."""
        return _range("occurred_at", "occurred_date", self.lo, self.hi)


def _range(column: str, day_column: str, lo: datetime | None, hi: datetime | None) -> pc.Expression | None:
    parts = []
    if lo is not None:
        parts += [pc.field(column) >= pa.scalar(lo, TS), pc.field(day_column) >= pa.scalar(lo.date(), pa.date32())]
    if hi is not None:
        parts += [pc.field(column) < pa.scalar(hi, TS), pc.field(day_column) <= pa.scalar(hi.date(), pa.date32())]
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out & p
    return out


def plan(dt: DeltaTable | None, chunk_rows: int) -> list[Window]:
    """Consecutive windows covering all of time, each holding about ``chunk_rows`` bronze rows
    (by the log's per-file row counts); one unbounded window when the table fits in one chunk."""
    if dt is None or chunk_rows <= 0:
        return [Window(None, None)]
    actions = pa.table(dt.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return [Window(None, None)]
    days: dict[date, list] = {}  # day -> [rows, min received_at, max received_at]
    cols = [actions.column(c).to_pylist() for c in _ACTION_COLUMNS]
    for day, rows, lo, hi in zip(*cols, strict=True):
        if isinstance(day, str):
            day = date.fromisoformat(day)
        entry = days.setdefault(day, [0, lo, hi])
        entry[0] += int(rows or 0)
        entry[1] = lo if entry[1] is None else min(entry[1], lo or entry[1])
        entry[2] = hi if entry[2] is None else max(entry[2], hi or entry[2])
    cuts: list[datetime] = []
    acc = 0
    for day in sorted(days):
        rows, lo, hi = days[day]
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if acc and acc + rows > chunk_rows:
            cuts.append(start)  # close the window before this day
            acc = 0
        slices = math.ceil(rows / chunk_rows)
        if slices > 1 and lo is not None and hi is not None and hi > lo:
            step = (hi - lo) / slices
            cuts.extend(lo + step * k for k in range(1, slices))
            acc = rows // slices  # the last slice stays open for the next day
        else:
            acc += rows
    bounds = [None, *sorted(set(cuts)), None]
    return [Window(a, b) for a, b in itertools.pairwise(bounds)]


_ACTION_COLUMNS = ("partition.received_date", "num_records", "min.received_at", "max.received_at")
