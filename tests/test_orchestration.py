"""Dagster: the code location loads, the whole graph materializes on scenario data, automation
follows new bronze versions, and the asset checks fail when the data is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow as pa
import pytest
import sqlalchemy as sa
import yaml

from core.settings import Settings
from orchestration import quality
from orchestration.common import key
from orchestration.definitions import LAKE_TABLES, build_definitions
from orchestration.defs import bronze as bronze_defs
from orchestration.defs import gold as gold_defs
from orchestration.defs import silver as silver_defs
from orchestration.defs.bronze import bronze_changes
from orchestration.defs.gold import GOLD_TABLES, gold_partitions
from orchestration.defs.silver import SILVER_TABLES
from orchestration.resources import LakeResource, OpsStoreResource
from storage.instances import add_instance
from storage.lake import Lake
from storage.maintenance import read_table
from tests import governance_data as gd

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(settings: Settings) -> sa.Engine:
    from storage import migrate
    from storage.db import get_engine

    engine = get_engine(settings)
    migrate.upgrade(engine)
    for instance, account in gd.INSTANCES.items():
        add_instance(engine, instance, account)
    return engine


def _resources(settings: Settings) -> dict[str, Any]:
    return {
        "lake": LakeResource(lake_uri=settings.lake_uri),
        "ops_store": OpsStoreResource(database_url=settings.database_url),
    }


def _defs(settings: Settings) -> dg.Definitions:
    """The code location's Definitions with resources on the test's lake and store."""
    defs = build_definitions(settings)
    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        schedules=defs.schedules,
        sensors=defs.sensors,
        resources=_resources(settings),
    )


def _assets(settings: Settings) -> list[Any]:
    return list(build_definitions(settings).assets or [])


def _graph(settings: Settings) -> list[Any]:
    """Every asset and asset check of the code location."""
    defs = build_definitions(settings)
    return [*(defs.assets or []), *(defs.asset_checks or [])]


# -- loading -------------------------------------------------------------------------------------------
def test_workspace_loads_the_code_location(settings: Settings, tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    (tmp_path / "dagster_home").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Validation successful for code location beazap" in done.stderr + done.stdout


def test_definitions_cover_every_table_with_groups_schemas_and_automation() -> None:
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    keys = set(graph.get_all_asset_keys())
    assert {key(t) for t in LAKE_TABLES} <= keys
    assert len(GOLD_TABLES) >= 8 and len(SILVER_TABLES) == 10
    for table in LAKE_TABLES:
        node = graph.get(key(table))
        layer = table.split("/")[0]
        assert node.group_name == layer
        if layer != "gold":  # gold schemas are attached at materialization (from the SQL output)
            assert isinstance(node.metadata.get("dagster/column_schema"), dg.TableSchema)
        if layer in ("silver", "gold"):
            assert node.automation_condition is not None
            assert "eager" in str(node.automation_condition.get_label() or node.automation_condition).lower()
            assert node.owners == ["team:beazap-data"]
    assert graph.get(key("bronze/webhook_events")).is_observable
    # One writer per layer: the silver and gold builds run in pools (limit 1 in dagster.yaml).
    specs = {a.op.name: a.op.pool for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) and a.is_executable}
    assert specs["silver_tables"] == "lake_silver" and specs["gold_tables"] == "lake_gold"
    config = yaml.safe_load((ROOT / "orchestration" / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"]["default_limit"] == 1
    names = {s.name for s in defs.schedules or []} | {s.name for s in defs.sensors or []}
    assert {
        "ops_action_extraction_every_minute",
        "lake_compaction_hourly",
        "lake_vacuum_daily",
        "retention_daily",
        "pg_partitions_daily",
        "bronze_observer",
        "beazap_automation",
    } <= names


# -- full materialization ------------------------------------------------------------------------------
def _count(lake: Lake, table: str) -> int:
    con = duckdb.connect()
    con.register("t", read_table(lake, table))
    return int(con.execute("select count(*) from t").fetchone()[0])


def test_materialize_the_whole_graph(settings: Settings, lake: Lake, store: sa.Engine) -> None:
    from live.projector import run_once

    gd.build().write(lake)
    run_once(lake, store)  # the live store, for the reconciliation check
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(_graph(settings), instance=instance, resources=_resources(settings), partition_key=_today())
    assert result.success
    materialized = {
        e.asset_key: e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert {key(t) for t in SILVER_TABLES} | {key(t) for t in GOLD_TABLES} <= set(materialized)
    for table in ("silver/messages", "silver/conversations", "gold/conversation_facts", "gold/daily_volume"):
        meta = materialized[key(table)]
        assert meta["dagster/row_count"].value == _count(lake, table) > 0
        assert meta["delta_version"].value == lake.version(table)
    assert isinstance(materialized[key("gold/daily_volume")]["dagster/column_schema"].value, dg.TableSchema)
    insights = materialized[key("gold/conversation_insights")]
    assert insights["dagster/row_count"].value == _count(lake, "gold/conversation_insights") > 0
    checks = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}
    assert checks["message_id_unique"].passed
    assert checks["conversation_id_unique"].passed
    assert checks["reject_rate"].passed
    assert checks["layer_row_counts"].passed
    assert checks["live_vs_gold_yesterday"].passed, checks["live_vs_gold_yesterday"].metadata
    assert checks["gold_fresh"].passed


# -- automation ---------------------------------------------------------------------------------------
def _today() -> str:
    """The latest gold partition: today in the default time zone."""
    from core.settings import get_settings

    last = gold_partitions(get_settings()).get_last_partition_key()
    assert last is not None
    return last


def _run_silver(settings: Settings, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        _assets(settings),
        instance=instance,
        resources=_resources(settings),
        selection=[key(t) for t in SILVER_TABLES],
    )
    assert result.success
    return result


def _run_gold(
    settings: Settings, instance: dg.DagsterInstance, partition: str | None = None
) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        _assets(settings),
        instance=instance,
        resources=_resources(settings),
        selection=[key(t) for t in GOLD_TABLES],
        partition_key=partition or _today(),
    )
    assert result.success
    return result


def _follow(
    settings: Settings, defs: dg.Definitions, instance: dg.DagsterInstance, cursor: Any
) -> tuple[Any, dg.ExecuteInProcessResult]:
    """What the automation daemon does after bronze was observed: a tick requests silver (gold is
    partitioned, so it never shares silver's run); silver runs; the next tick requests gold's latest
    partition, which runs; then nothing more is requested. Returns the cursor and the gold run."""
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    assert set(SILVER_TABLES) <= _requested(tick) and not (_requested(tick) & set(GOLD_TABLES))
    _run_silver(settings, instance)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert set(GOLD_TABLES) <= _requested(tick) and not (_requested(tick) & set(SILVER_TABLES))
    for table in GOLD_TABLES:
        assert tick.get_requested_partitions(key(table)) == {_today()}  # only today's partition
    gold = _run_gold(settings, instance)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert not (_requested(tick) & {*SILVER_TABLES, *GOLD_TABLES})
    return tick.cursor, gold


def _requested(result: dg.EvaluateAutomationConditionsResult) -> set[str]:
    return {"/".join(r.key.path) for r in result.results if r.true_subset.size and isinstance(r.key, dg.AssetKey)}


def _observe(settings: Settings, instance: dg.DagsterInstance) -> None:
    from dagster._core.definitions.observe import observe  # what the observe_bronze job runs

    sources = [a for a in _assets(settings) if isinstance(a, dg.SourceAsset)]
    assert observe(sources, instance=instance, resources=_resources(settings)).success


def _data_version(instance: dg.DagsterInstance, table: str) -> str | None:
    record = instance.get_latest_data_version_record(key(table))
    return None if record is None else record.asset_observation.data_version


def test_automation_follows_new_bronze_versions(settings: Settings, lake: Lake, store: sa.Engine) -> None:
    defs = _defs(settings)
    instance = dg.DagsterInstance.ephemeral()
    scenario = gd.build(days=2)
    half = len(scenario.envelopes) // 2
    first = gd.Scenario(envelopes=scenario.envelopes[:half], ops=scenario.ops)
    first.write(lake)

    # The daemon is already ticking when data arrives.
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert not (_requested(tick) & {*SILVER_TABLES, *GOLD_TABLES})
    changed, cursor = bronze_changes(lake, None)
    # Every bronze table counts once, even quarantine that does not exist yet (version -1).
    assert sorted(changed) == ["bronze/ops_events", "bronze/quarantine", "bronze/webhook_events"]
    _observe(settings, instance)  # the run the bronze_observer sensor requests
    assert _data_version(instance, "bronze/webhook_events") == str(lake.version("bronze/webhook_events"))
    tick_cursor, _ = _follow(settings, defs, instance, tick.cursor)
    changed, cursor = bronze_changes(lake, cursor)
    assert changed == []  # nothing new in bronze: the sensor requests nothing

    gd.Scenario(envelopes=scenario.envelopes[half:]).write(lake)
    changed, cursor = bronze_changes(lake, cursor)
    assert changed == ["bronze/webhook_events"]
    _observe(settings, instance)
    assert _data_version(instance, "bronze/webhook_events") == str(lake.version("bronze/webhook_events"))
    _follow(settings, defs, instance, tick_cursor)


def test_bronze_observation_reports_the_delta_version(settings: Settings, lake: Lake) -> None:
    gd.build(days=1).write(lake)
    source = next(
        a for a in _assets(settings) if isinstance(a, dg.SourceAsset) and a.key == key("bronze/webhook_events")
    )
    instance = dg.DagsterInstance.ephemeral()
    from dagster._core.definitions.observe import observe  # what the UI's "Observe" button runs

    result = observe([source], instance=instance, resources=_resources(settings))
    assert result.success
    record = instance.get_latest_data_version_record(key("bronze/webhook_events"))
    assert record is not None
    assert record.asset_observation.data_version == str(lake.version("bronze/webhook_events"))


# -- gold partitions ------------------------------------------------------------------------------------
def _gold_rows(lake: Lake) -> dict[str, list[str]]:
    """Every gold row as canonical JSON (sorted), per table."""
    import json

    return {
        t: sorted(json.dumps(r, default=str, sort_keys=True) for r in read_table(lake, t).to_pylist())
        for t in GOLD_TABLES
    }


def _full_rebuild(lake: Lake, tmp_path: Path, store: sa.Engine, settings: Settings) -> Lake:
    """The same silver rebuilt in full into a copy of the lake (the reference)."""
    import shutil

    from gold.runner import build_gold

    copy = Lake(root=str(tmp_path / "reference"))
    shutil.copytree(lake.root, copy.root)
    for table in GOLD_TABLES:
        shutil.rmtree(Path(copy.root) / table, ignore_errors=True)
    build_gold(copy, engine=store, settings=settings)
    return copy


def test_gold_is_partitioned_by_local_day_with_single_run_backfills(settings: Settings) -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    defs = build_definitions(settings)
    node = defs.resolve_asset_graph().get(key("gold/daily_volume"))
    assert node.partitions_def == gold_partitions(settings)
    assert node.partitions_def.timezone == settings.default_timezone
    assert node.partitions_def.start.date() == settings.gold_partitions_start
    today = datetime.now(UTC).astimezone(ZoneInfo(settings.default_timezone)).date().isoformat()
    assert _today() == today  # end_offset=1: today is a partition
    assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert defs.resolve_asset_graph().get(key("gold/conversation_insights")).partitions_def is None


def test_late_event_rewrites_exactly_its_day_and_gold_equals_a_full_rebuild(
    settings: Settings, lake: Lake, store: sa.Engine, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    defs = _defs(settings)
    instance = dg.DagsterInstance.ephemeral()
    scenario = gd.build(days=3)
    scenario.write(lake)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    _observe(settings, instance)
    cursor, _ = _follow(settings, defs, instance, tick.cursor)

    # A reply to a three-day-old conversation reaches bronze only now (a delayed webhook).
    received, opening = next(
        (t, b) for t, b in scenario.envelopes if b["event"] == "messages.upsert" and not b["data"]["key"]["fromMe"]
    )
    at = received + timedelta(minutes=1)
    late = gd._message(
        opening["instance"], opening["data"]["key"]["remoteJid"], "LATE000001", at, from_me=True, text="ok"
    )
    gd.Scenario(envelopes=[(datetime.now(UTC), late)]).write(lake)
    day = at.astimezone(ZoneInfo(settings.default_timezone)).date().isoformat()
    assert day < _today()

    _observe(settings, instance)
    _, result = _follow(settings, defs, instance, cursor)  # the automation asks for today's partition only

    rewritten = {
        (e.asset_key, e.partition)
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[0] == "gold" and e.partition != _today()
    }
    assert {p for _, p in rewritten} == {day}  # exactly the late day, recorded as its partition
    assert (key("gold/daily_volume"), day) in rewritten
    latest = instance.get_latest_materialization_event(key("gold/daily_volume"))
    assert latest is not None
    partition_record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key("gold/daily_volume"), asset_partitions=[day]), limit=1
    ).records
    assert partition_record and partition_record[0].run_id == result.run_id
    assert _gold_rows(lake) == _gold_rows(_full_rebuild(lake, tmp_path, store, settings))


def test_a_new_day_starts_its_partition_without_new_data(settings: Settings, lake: Lake, store: sa.Engine) -> None:
    """At midnight (default zone) the new day's partition is missing: the automation builds it, and
    that run also rewrites yesterday wherever its rows changed (clocks that were still running)."""
    from datetime import datetime, time, timedelta
    from zoneinfo import ZoneInfo

    defs = _defs(settings)
    instance = dg.DagsterInstance.ephemeral()
    gd.build(days=2).write(lake)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    _observe(settings, instance)
    cursor, _ = _follow(settings, defs, instance, tick.cursor)

    zone = ZoneInfo(settings.default_timezone)
    tomorrow = datetime.now(zone).date() + timedelta(days=1)
    after_midnight = datetime.combine(tomorrow, time(0, 5), zone)
    tick = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=cursor, evaluation_time=after_midnight
    )
    assert tick.get_requested_partitions(key("gold/daily_volume")) == {tomorrow.isoformat()}
    assert not (_requested(tick) & set(SILVER_TABLES))


def test_single_run_backfill_of_a_range_equals_a_full_rebuild_over_it(
    settings: Settings, lake: Lake, store: sa.Engine, tmp_path: Path
) -> None:
    import json
    from datetime import date, timedelta

    gd.build(days=4).write(lake)
    from silver.pipeline import build_silver

    build_silver(lake, settings=settings)
    reference = _full_rebuild(lake, tmp_path, store, settings)
    today = date.fromisoformat(_today())
    first, last = (today - timedelta(days=4)).isoformat(), (today - timedelta(days=2)).isoformat()
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        _assets(settings),
        instance=instance,
        resources=_resources(settings),
        selection=[key(t) for t in GOLD_TABLES],
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )
    assert result.success
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == key("gold/daily_volume")]
    assert sorted(e.partition for e in events) == [first, (today - timedelta(days=3)).isoformat(), last]
    assert len(instance.get_runs()) == 1  # one run, one gold computation for the whole range
    for table in GOLD_TABLES:
        column = "opened_day" if table in ("gold/conversation_facts", "gold/reply_waits") else "day"
        expected = sorted(
            json.dumps(r, default=str, sort_keys=True)
            for r in read_table(reference, table).to_pylist()
            if first <= r[column].isoformat() <= last
        )
        assert (
            sorted(json.dumps(r, default=str, sort_keys=True) for r in read_table(lake, table).to_pylist()) == expected
        )
    assert any(_gold_rows(lake).values())


# -- checks fail when they should -----------------------------------------------------------------------
def _built(settings: Settings, lake: Lake, store: sa.Engine) -> None:
    from gold.runner import build_gold
    from live.projector import run_once
    from silver.pipeline import build_silver

    gd.build().write(lake)
    build_silver(lake, settings=settings)
    run_once(lake, store)
    build_gold(lake, engine=store, settings=settings)


def _run_check(settings: Settings, check: Any) -> dg.AssetCheckEvaluation:
    result = dg.materialize(
        [*_assets(settings), check],
        resources=_resources(settings),
        selection=dg.AssetSelection.checks(check),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,  # a failing blocking check fails its step: that is expected here
    )
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_checks_fail_on_duplicates_rejects_and_mismatches(settings: Settings, lake: Lake, store: sa.Engine) -> None:
    live_vs_gold_yesterday = gold_defs.live_vs_gold_yesterday(settings)
    _built(settings, lake, store)
    for check in (
        silver_defs.message_id_unique,
        silver_defs.reject_rate,
        gold_defs.layer_row_counts,
        live_vs_gold_yesterday,
    ):
        assert _run_check(settings, check).passed, check.check_specs

    # A duplicated message id in silver.
    one = read_table(lake, "silver/messages").slice(0, 1)
    lake.write("silver/messages", one, mode="append")
    failed = _run_check(settings, silver_defs.message_id_unique)
    assert not failed.passed and failed.metadata["duplicate_keys"].value == 1
    assert failed.severity == dg.AssetCheckSeverity.ERROR

    # An extra conversation in silver that gold does not have.
    conv = read_table(lake, "silver/conversations").slice(0, 1).to_pylist()[0]
    conv["conversation_id"] = "cv_injected"
    lake.write("silver/conversations", pa.Table.from_pylist([conv], lake.dataset("silver/conversations").schema))
    assert not _run_check(settings, gold_defs.layer_row_counts).passed
    assert _run_check(settings, silver_defs.conversation_id_unique).passed
    lake.write("silver/conversations", pa.Table.from_pylist([conv], read_table(lake, "silver/conversations").schema))
    assert not _run_check(settings, silver_defs.conversation_id_unique).passed  # cv_injected twice

    # A conversation the live store has lost.
    with store.begin() as conn:
        facts = duckdb.connect()
        facts.register("f", read_table(lake, "gold/conversation_facts"))
        ids = [r[0] for r in facts.execute("select conversation_id from f").fetchall()]
        deleted = conn.execute(sa.text("delete from conversations where id = :i"), {"i": ids[-1]}).rowcount
    assert deleted == 1
    outcome = quality.reconcile_yesterday(lake, store)
    evaluation = _run_check(settings, live_vs_gold_yesterday)
    assert not outcome.passed and not evaluation.passed

    # Unparseable webhooks push the reject rate over its limit.
    from silver.pipeline import build_silver

    bad = [(e[0], {**e[1], "data": "not an object"}) for e in gd.build(seed=9, days=1).envelopes]
    gd.Scenario(envelopes=bad).write(lake)
    build_silver(lake, settings=settings)
    assert not _run_check(settings, silver_defs.reject_rate).passed


def test_freshness_checks_fail_on_stale_tables(
    settings: Settings, lake: Lake, store: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.settings import get_settings

    _built(settings, lake, store)
    assert _run_check(settings, gold_defs.gold_fresh).passed
    # New bronze after gold was built, with no tolerance: gold is stale until rebuilt.
    gd.build(seed=3, days=1).write(lake)
    monkeypatch.setenv("BEAZAP_FRESHNESS_GOLD_MINUTES", "0")
    get_settings.cache_clear()
    stale = _run_check(settings, gold_defs.gold_fresh)
    assert not stale.passed and stale.metadata["lag_minutes"].value >= 0
    # Bronze is fresh only while webhooks keep arriving.
    monkeypatch.setenv("BEAZAP_FRESHNESS_BRONZE_MINUTES", str(60 * 24 * 30))
    get_settings.cache_clear()
    assert _run_check(settings, bronze_defs.bronze_fresh).passed
    monkeypatch.setenv("BEAZAP_FRESHNESS_BRONZE_MINUTES", "1")
    get_settings.cache_clear()
    assert not _run_check(settings, bronze_defs.bronze_fresh).passed
