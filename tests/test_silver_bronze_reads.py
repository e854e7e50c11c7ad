"""Incremental silver reads every row appended to bronze, whatever the table's commit history says.

Under concurrent appends (two receiver workers, auto-compaction, checkpoints) delta-rs' ``history()``
was seen labelling commits with the wrong version (a compaction's label on the append before it);
silver used those labels to skip compactions and so dropped the rows of that append. Compactions
add no change-data rows, so nothing needs skipping: these tests pin both halves.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from deltalake import DeltaTable
from test_silver_scenarios import T0, message

from bronze import schema as B  # noqa: N812
from bronze.compaction import compact_partitions
from silver import schema as S  # noqa: N812
from silver.pipeline import build_silver
from storage.lake import Lake
from tests.support.bronze_rows import append_webhooks, webhook_rows

JID = "5511987654321@s.whatsapp.net"


def _append(lake: Lake, i: int) -> int:
    at = T0 + timedelta(minutes=i)
    body = message(f"M{i:03d}", JID, at, text=f"t{i}")
    return append_webhooks(lake, webhook_rows([(f"r{i}", at, body)]))


def _message_ids(lake: Lake) -> list[str]:
    return sorted(lake.open(S.MESSAGES).to_pyarrow_table(columns=["message_id"]).column(0).to_pylist())


def _compact(lake: Lake) -> None:
    days = {(T0 + timedelta(minutes=i)).date() for i in range(5)}
    compact_partitions(lake, B.WEBHOOK_EVENTS, "received_date", days)


@pytest.mark.parametrize("mislabelled", [False, True], ids=["history-true", "history-shifted"])
def test_incremental_silver_keeps_the_append_before_a_compaction(
    tmp_path, monkeypatch: pytest.MonkeyPatch, mislabelled: bool
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    _append(lake, 0)
    build_silver(lake)
    for i in range(1, 4):
        _append(lake, i)
    _compact(lake)  # an OPTIMIZE commit right after the append of M003
    _append(lake, 4)
    if mislabelled:
        real = DeltaTable.history

        def shifted(self: DeltaTable, limit: int | None = None) -> list[dict]:
            return [{**h, "version": h["version"] - 1} for h in real(self, limit)]

        monkeypatch.setattr(DeltaTable, "history", shifted)
    build_silver(lake)
    assert _message_ids(lake) == [f"M{i:03d}" for i in range(5)]
