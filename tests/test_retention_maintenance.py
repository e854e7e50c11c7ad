"""Lake maintenance (compaction, checkpoint, vacuum) and the Dagster jobs behind the schedules."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from core.settings import Settings
from orchestration.resources import LakeResource, OpsStoreResource
from storage import maintenance
from storage.lake import Lake
from tests import governance_data as gd


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*.parquet") if "_delta_log" not in p.parts}


def test_optimize_checkpoint_vacuum(lake: Lake, lake_dir: Path) -> None:
    gd.build(days=3).write(lake)  # one commit per day: several small files
    table = "bronze/webhook_events"
    rows = maintenance.count_rows(lake, table)
    before = maintenance.table_stats(lake.open(table))
    assert before["rows"] == rows

    compacted = maintenance.optimize(lake, table)
    after = maintenance.table_stats(lake.open(table))
    assert after["rows"] == rows and after["files"] <= before["files"]
    assert compacted.version_after is not None and compacted.version_after >= compacted.version_before

    maintenance.checkpoint(lake, table)
    assert (lake_dir / "bronze" / "webhook_events" / "_delta_log" / "_last_checkpoint").exists()

    on_disk = _files(lake_dir / "bronze" / "webhook_events")
    kept = maintenance.vacuum(lake, table, retention_hours=168)  # recent files are kept for time travel
    assert kept.files_removed == 0 and _files(lake_dir / "bronze" / "webhook_events") == on_disk
    gone = maintenance.vacuum(lake, table, retention_hours=0)
    remaining = _files(lake_dir / "bronze" / "webhook_events")
    assert gone.files_removed == len(on_disk) - len(remaining) >= (1 if compacted.files_removed else 0)
    assert maintenance.count_rows(lake, table) == rows
    assert lake.tables() == ["bronze/ops_events", "bronze/webhook_events"]


def test_maintenance_jobs_run_in_dagster(lake: Lake, settings: Settings, engine: sa.Engine) -> None:
    from orchestration.defs.bronze import ops_extraction_job
    from orchestration.defs.maintenance import lake_compaction_job, lake_vacuum_job, pg_partitions_job, retention_job

    gd.build(days=2).write(lake)
    resources = {
        "lake": LakeResource(lake_uri=settings.lake_uri),
        "ops_store": OpsStoreResource(database_url=engine.url.render_as_string(hide_password=False)),
    }
    for job in (ops_extraction_job, lake_compaction_job, lake_vacuum_job, retention_job, pg_partitions_job):
        result = job.execute_in_process(resources=resources)
        assert result.success, job.name
    # Every lake writer op carries its layer's pool (one writer per Delta table at a time).
    pools = {node.name: node.definition.pool for node in lake_compaction_job.graph.node_dict.values()}
    assert pools == {"compact_bronze": "lake_bronze", "compact_silver": "lake_silver", "compact_gold": "lake_gold"}
    assert maintenance.count_rows(lake, "bronze/webhook_events") > 0  # nothing within retention was touched
