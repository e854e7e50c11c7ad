"""Partial gold rebuilds by local day (the unit of Dagster's daily partitions).

A rebuild of some days replaces exactly those days' rows (every other row stays byte-identical); a
range rebuild equals a full rebuild over that range; ``refresh_changed`` finds late data and leaves
gold equal to a full rebuild; a full rebuild keeps the days silver no longer holds (retention).
Two instances in different zones (São Paulo, Tokyo): a day is a local day in each instance's zone.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from core.settings import Settings
from gold.runner import DAY_COLUMNS, GOLD_TABLES, build_gold
from silver import schema as silver_schema
from storage.instances import add_instance
from storage.lake import Lake
from storage.maintenance import read_table
from tests.support.gold_fixtures import synthetic, write_silver

START = datetime(2026, 1, 27, 6, tzinfo=UTC)
DAYS = 9  # crosses the January → February month boundary (silver retention drops whole months)
AS_OF = datetime(2026, 2, 6, 12, tzinfo=UTC)
ZONES = {"inst-sp": "America/Sao_Paulo", "inst-tk": "Asia/Tokyo"}


@pytest.fixture
def world(settings: Settings, lake: Lake) -> Iterator[dict[str, Any]]:
    from storage import migrate
    from storage.db import get_engine

    engine = get_engine(settings)
    migrate.upgrade(engine)
    for inst, tz in ZONES.items():
        add_instance(engine, inst, "acct", token=f"t-{inst}", timezone=tz)
    rows = synthetic(lake, instances=list(ZONES), start=START, days=DAYS, per_day=8, as_of=AS_OF, seed=5)
    yield {"engine": engine, "rows": rows}
    engine.dispose()


Snapshot = dict[str, dict[tuple[str, date], list[str]]]


def by_day(lake: Lake, table: str) -> dict[tuple[str, date], list[str]]:
    """Every row of ``gold/<table>`` as canonical JSON, grouped by (instance, local day), sorted."""
    out: dict[tuple[str, date], list[str]] = defaultdict(list)
    for row in read_table(lake, f"gold/{table}").to_pylist():
        out[(row["instance_id"], row[DAY_COLUMNS[table]])].append(json.dumps(row, default=str, sort_keys=True))
    return {k: sorted(v) for k, v in out.items()}


def snapshot(lake: Lake) -> Snapshot:
    return {t: by_day(lake, t) for t in GOLD_TABLES}


def on(snap: dict[tuple[str, date], list[str]], day: date) -> dict[str, list[str]]:
    """The rows of one local day, per instance."""
    return {inst: rows for (inst, d), rows in snap.items() if d == day}


def copy_lake(lake: Lake, tmp_path: Path, name: str) -> Lake:
    """A second lake with the same silver (and gold, when built) — an independent rebuild target."""
    target = tmp_path / name
    shutil.copytree(lake.root, target)
    return Lake(root=str(target))


def build(lake: Lake, world: dict[str, Any], **kwargs: Any) -> dict[str, dict]:
    return build_gold(lake, engine=world["engine"], as_of=AS_OF, **kwargs)


def all_days(snap: Snapshot) -> list[date]:
    return sorted({d for table in snap.values() for (_, d) in table if d is not None})


def late_message(lake: Lake, world: dict[str, Any]) -> date:
    """Append an inbound message to an old resolved conversation (its opening day, in its zone)."""
    from zoneinfo import ZoneInfo

    conv = next(
        c
        for c in world["rows"]["conversations"]
        if c["status"] == "resolved"
        and c["instance_id"] == "inst-sp"
        and c["opened_at"] < START + timedelta(days=3)
        and 9 <= c["opened_at"].astimezone(ZoneInfo(ZONES["inst-sp"])).hour <= 18
    )
    first = next(m for m in world["rows"]["messages"] if m["conversation_id"] == conv["conversation_id"])
    extra = {**first, "message_id": first["message_id"] + "-late", "event_at": conv["opened_at"] + timedelta(minutes=1)}
    write_silver(lake, "messages", [extra], mode="append")
    return conv["opened_at"].astimezone(ZoneInfo(ZONES["inst-sp"])).date()


def test_one_day_replaces_only_that_day(world: dict[str, Any], lake: Lake, tmp_path: Path) -> None:
    build(lake, world)
    before = snapshot(lake)
    day = late_message(lake, world)
    other = all_days(before)[-2]  # a day that also changes in silver but is not rebuilt
    assert other != day

    stats = build(lake, world, days=(day, day))
    after = snapshot(lake)
    assert stats["daily_volume"]["days"] == 1 and stats["daily_volume"]["late_days"] == []
    reference = copy_lake(lake, tmp_path, "reference")
    build(reference, world)
    full = snapshot(reference)
    for table in GOLD_TABLES:
        for k in set(before[table]) | set(after[table]):
            expected = full if k[1] == day else before
            assert after[table].get(k) == expected[table].get(k), (table, k)
    assert on(after["daily_volume"], day) != on(before["daily_volume"], day)  # the late message is counted


def test_range_backfill_equals_a_full_rebuild_over_the_range(world: dict[str, Any], lake: Lake, tmp_path: Path) -> None:
    reference = copy_lake(lake, tmp_path, "reference")
    build(reference, world)
    full = snapshot(reference)
    days = all_days(full)
    first, last = days[2], days[5]

    stats = build(lake, world, days=(first, last))
    ranged = snapshot(lake)
    assert stats["conversation_facts"]["days"] == 4
    for table in GOLD_TABLES:
        assert ranged[table] == {k: v for k, v in full[table].items() if first <= k[1] <= last}, table


def test_refresh_changed_finds_the_late_day_and_equals_a_full_rebuild(
    world: dict[str, Any], lake: Lake, tmp_path: Path
) -> None:
    build(lake, world)
    assert all(
        s["late_days"] == [] for s in build(lake, world, days=(AS_OF.date(), None), refresh_changed=True).values()
    )
    day = late_message(lake, world)

    stats = build(lake, world, days=(AS_OF.date(), None), refresh_changed=True)
    assert {d for s in stats.values() for d in s["late_days"]} == {day.isoformat()}
    assert stats["daily_volume"]["late_days"] == [day.isoformat()]
    reference = copy_lake(lake, tmp_path, "reference")
    build(reference, world)
    assert snapshot(lake) == snapshot(reference)


def test_day_by_day_in_random_order_equals_a_full_rebuild(world: dict[str, Any], lake: Lake, tmp_path: Path) -> None:
    reference = copy_lake(lake, tmp_path, "reference")
    build(reference, world)
    full = snapshot(reference)
    days = all_days(full)
    random.Random(3).shuffle(days)
    for d in days:
        build(lake, world, days=(d, d))
    assert snapshot(lake) == full


def _drop_january(lake: Lake) -> None:
    """What silver retention does once January is past the cutoff: whole months go."""
    for table, column in (
        (silver_schema.MESSAGES, "event_month"),
        (silver_schema.CONVERSATIONS, "opened_month"),
        (silver_schema.CALLS, "event_month"),
    ):
        DeltaTable(lake.uri(table)).delete(f"{column} = '2026-01'")


def test_full_rebuild_keeps_gold_days_older_than_silver(world: dict[str, Any], lake: Lake, settings: Settings) -> None:
    build(lake, world)
    before = snapshot(lake)
    _drop_january(lake)
    aged = settings.model_copy(update={"retention_silver_days": 3})  # every January day is past the cutoff

    stats = build_gold(lake, engine=world["engine"], as_of=AS_OF, settings=aged)
    after = snapshot(lake)
    # February starts at 21:00 on 31 January in São Paulo and at 09:00 on 1 February in Tokyo: those
    # local days are partial in silver now, so they are kept with every older day.
    last_kept = {"inst-sp": date(2026, 1, 31), "inst-tk": date(2026, 2, 1)}
    kept = 0
    for table in GOLD_TABLES:
        for (inst, d), rows in before[table].items():
            if d is not None and d <= last_kept[inst]:
                assert after[table].get((inst, d)) == rows, (table, inst, d)
                kept += 1
    assert kept > 20 and stats["daily_volume"]["rows"] > 0
    assert (("inst-sp", date(2026, 1, 27)) in after["daily_volume"]) and (
        ("inst-tk", date(2026, 1, 27)) in after["daily_volume"]
    )
    # Days silver still holds whole are rebuilt from it: the same as before (nothing changed there).
    assert on(after["daily_volume"], date(2026, 2, 3)) == on(before["daily_volume"], date(2026, 2, 3))


def test_days_before_silver_are_never_replaced_even_when_asked(world: dict[str, Any], lake: Lake) -> None:
    build(lake, world)
    before = snapshot(lake)
    _drop_january(lake)
    stats = build(lake, world, days=(date(2026, 1, 27), date(2026, 1, 29)))
    assert stats["daily_volume"]["rows"] == 0
    assert snapshot(lake)["daily_volume"] == before["daily_volume"]


def _older_schema(lake: Lake) -> None:
    """Make gold/daily_volume look written by an older gold SQL: one column fewer, one since dropped."""
    import pyarrow as pa

    old = read_table(lake, "gold/daily_volume").drop_columns(["edited_messages"])
    old = old.append_column("legacy", pa.array(["x"] * old.num_rows))
    lake.write("gold/daily_volume", old, mode="overwrite", schema_mode="overwrite")


def test_a_partial_rebuild_evolves_the_schema_and_keeps_other_days(world: dict[str, Any], lake: Lake) -> None:
    build(lake, world)
    before = read_table(lake, "gold/daily_volume")
    _older_schema(lake)
    day = sorted(set(before.column("day").to_pylist()))[3]

    build(lake, world, days=(day, day))
    after = read_table(lake, "gold/daily_volume")
    assert after.schema.names == before.schema.names  # "legacy" gone, "edited_messages" back
    rows = after.to_pylist()
    assert all(r["edited_messages"] is not None for r in rows if r["day"] == day)
    assert all(r["edited_messages"] is None for r in rows if r["day"] != day)  # kept as they were
    strip = [{k: v for k, v in r.items() if k != "edited_messages"} for r in before.to_pylist()]
    assert sorted(map(repr, [{k: v for k, v in r.items() if k != "edited_messages"} for r in rows])) == sorted(
        map(repr, strip)
    )


def test_refresh_after_a_schema_change_rewrites_every_day(world: dict[str, Any], lake: Lake, tmp_path: Path) -> None:
    build(lake, world)
    reference = copy_lake(lake, tmp_path, "reference")
    _older_schema(lake)
    stats = build(lake, world, days=(AS_OF.date(), None), refresh_changed=True)
    assert len(stats["daily_volume"]["late_days"]) >= DAYS - 1
    assert snapshot(lake) == snapshot(reference)
