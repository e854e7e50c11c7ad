"""Silver's cursor: which bronze versions were processed and the as-of instant of the last run.

Kept in the small Delta table ``silver/_state`` (one row per key, rewritten at the end of a run).
Private tables start with ``_`` so ``storage.duck`` does not expose them as views.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from storage.lake import Lake

STATE = "silver/_state"
STATE_SCHEMA = pa.schema([("key", pa.string()), ("int_value", pa.int64()), ("ts_value", pa.timestamp("us", tz="UTC"))])


@dataclass
class SilverState:
    bronze_version: int = -1  # last bronze/webhook_events version applied (-1: none)
    ops_version: int = -1  # last bronze/ops_events version applied
    as_of: datetime | None = None  # the last run's as-of instant (docs/silver.md → "now")

    @classmethod
    def load(cls, lake: Lake) -> SilverState:
        dt = lake.open_or_none(STATE)
        state = cls()
        if dt is None:
            return state
        for row in lake.dataset(STATE, dt).to_table().to_pylist():
            key = row["key"]
            if key == "bronze_version":
                state.bronze_version = int(row["int_value"])
            elif key == "ops_version":
                state.ops_version = int(row["int_value"])
            elif key == "as_of":
                state.as_of = row["ts_value"]
        return state

    def save(self, lake: Lake) -> None:
        rows = [
            {"key": "bronze_version", "int_value": self.bronze_version, "ts_value": None},
            {"key": "ops_version", "int_value": self.ops_version, "ts_value": None},
            {"key": "as_of", "int_value": None, "ts_value": self.as_of},
        ]
        lake.write(STATE, pa.Table.from_pylist(rows, schema=STATE_SCHEMA), mode="overwrite", schema_mode="overwrite")
