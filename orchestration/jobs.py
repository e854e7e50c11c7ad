"""Maintenance jobs, their schedules, and the sensors that keep the lake current.

| what | when | job/sensor |
| --- | --- | --- |
| observe bronze when a Delta version moved (data version = Delta version) | every 30 s | ``bronze_observer`` |
| silver, then gold's latest daily partition (+ late days), checks | every 15 s | ``beazap_automation`` |
| ops action log → ``bronze/ops_events`` | every minute | ``ops_action_extraction`` |
| compaction (``optimize``) + checkpoint | hourly | ``lake_compaction`` |
| ``vacuum`` (keeps ``BEAZAP_VACUUM_RETENTION_HOURS`` of time travel) | daily 03:30 | ``lake_vacuum`` |
| retention deletes (lake + ops store) | daily 02:30 | ``retention`` |
| PostgreSQL ``messages`` partitions | daily 01:30 | ``pg_partitions`` |

Every op that writes a Delta table runs in the pool of its layer (limit 1), so it never races the
silver/gold builds of that layer.
"""

import json
from typing import Any

import dagster as dg
from dagster import OpExecutionContext

from core.settings import get_settings
from orchestration.assets import BRONZE_SOURCES, key, pool
from orchestration.resources import LakeResource, OpsStoreResource

LAYERS = ("bronze", "silver", "gold")
TIMEZONE = get_settings().default_timezone


# -- compaction / checkpoint / vacuum -----------------------------------------------------------------
def _layer_tables(lake: Any, layer: str) -> list[str]:
    from storage.maintenance import list_tables

    return list_tables(lake, [layer])


def _maintenance_op(layer: str, action: str) -> dg.OpDefinition:
    @dg.op(
        name=f"{action}_{layer}",
        description=f"{action.capitalize()} every {layer} Delta table.",
        pool=pool(layer),
        tags={"layer": layer},
    )
    def _op(context: OpExecutionContext, lake: LakeResource) -> None:
        from storage import maintenance

        the_lake = lake.lake()
        settings = lake.settings()
        for table in _layer_tables(the_lake, layer):
            if action == "compact":
                results = [maintenance.optimize(the_lake, table), maintenance.checkpoint(the_lake, table)]
            else:
                results = [maintenance.vacuum(the_lake, table, retention_hours=settings.vacuum_retention_hours)]
            for result in results:
                context.log.info(f"{result.action} {table}: +{result.files_added} -{result.files_removed} files")

    return _op


def _layer_job(name: str, action: str, description: str) -> dg.JobDefinition:
    ops = [_maintenance_op(layer, action) for layer in LAYERS]

    @dg.graph(name=f"{name}_graph", description=description)
    def _graph() -> None:
        for op in ops:
            op()

    return _graph.to_job(name=name, description=description)


lake_compaction_job = _layer_job("lake_compaction", "compact", "Compact small files and checkpoint every table.")
lake_vacuum_job = _layer_job("lake_vacuum", "vacuum", "Delete files no retained Delta version references.")


# -- retention ----------------------------------------------------------------------------------------
def _retention_layer_op(layer: str) -> dg.OpDefinition:
    @dg.op(name=f"retention_{layer}", pool=pool(layer), description=f"Delete {layer} rows past their retention.")
    def _op(context: OpExecutionContext, lake: LakeResource) -> None:
        from governance import retention

        report = retention.run(lake.lake(), None, dry_run=False, settings=lake.settings(), layers=(layer,))
        context.log.info(json.dumps(report.as_dict()))

    return _op


@dg.op(description="Delete ops-store rows past the live window and drop expired partitions.")
def retention_ops_store(context: OpExecutionContext, lake: LakeResource, ops_store: OpsStoreResource) -> None:
    from governance import retention

    report = retention.run(lake.lake(), ops_store.engine(), dry_run=False, settings=lake.settings(), layers=())
    context.log.info(json.dumps(report.as_dict()))


_retention_ops = [_retention_layer_op(layer) for layer in LAYERS]


@dg.job(name="retention", description="Apply data retention to the lake (per layer) and the ops store.")
def retention_job() -> None:
    for op in _retention_ops:
        op()
    retention_ops_store()


# -- PostgreSQL partitions ------------------------------------------------------------------------------
@dg.op(description="Create the coming months' messages partitions; drop those past the live window.")
def maintain_partitions(context: OpExecutionContext, ops_store: OpsStoreResource) -> None:
    from storage import partitions

    settings = get_settings()
    report = partitions.maintain(ops_store.engine(), live_window_days=settings.live_window_days)
    context.log.info(f"partitions created={report.created} dropped={report.dropped} deleted={report.deleted_rows}")


@dg.job(name="pg_partitions", description="PostgreSQL partition maintenance of the live messages table.")
def pg_partitions_job() -> None:
    maintain_partitions()


# -- schedules ----------------------------------------------------------------------------------------
RUNNING = dg.DefaultScheduleStatus.RUNNING


@dg.op(
    description="Append the ops store's not-yet-extracted actions to bronze/ops_events.",
    pool=pool("bronze_ops_events"),
    tags={"layer": "bronze"},
)
def extract_ops_actions(context: OpExecutionContext, lake: LakeResource, ops_store: OpsStoreResource) -> None:
    from live.extract import extract_actions

    extracted = extract_actions(ops_store.engine(), lake.lake())
    context.log.info(f"extracted {extracted} actions to bronze/ops_events")


@dg.job(name="ops_action_extraction", description="Ops action log → bronze/ops_events (observed like all bronze).")
def ops_extraction_job() -> None:
    extract_ops_actions()


schedules = [
    dg.ScheduleDefinition(
        name="ops_action_extraction_every_minute",
        job=ops_extraction_job,
        cron_schedule="* * * * *",
        default_status=RUNNING,
    ),
    dg.ScheduleDefinition(
        name="lake_compaction_hourly", job=lake_compaction_job, cron_schedule="7 * * * *", default_status=RUNNING
    ),
    dg.ScheduleDefinition(
        name="lake_vacuum_daily",
        job=lake_vacuum_job,
        cron_schedule="30 3 * * *",
        execution_timezone=TIMEZONE,
        default_status=RUNNING,
    ),
    dg.ScheduleDefinition(
        name="retention_daily",
        job=retention_job,
        cron_schedule="30 2 * * *",
        execution_timezone=TIMEZONE,
        default_status=RUNNING,
    ),
    dg.ScheduleDefinition(
        name="pg_partitions_daily",
        job=pg_partitions_job,
        cron_schedule="30 1 * * *",
        execution_timezone=TIMEZONE,
        default_status=RUNNING,
    ),
]


# -- sensors ------------------------------------------------------------------------------------------
def bronze_changes(lake: Any, cursor: str | None) -> tuple[list[str], str]:
    """Bronze tables whose Delta version moved since ``cursor`` (plain function).

    A table that does not exist yet counts as version ``-1``, so it is observed once and does not
    stay *missing* (eager automation waits for missing upstreams).
    """
    seen: dict[str, int] = json.loads(cursor) if cursor else {}
    changed: list[str] = []
    for table in BRONZE_SOURCES:
        version = lake.version(table)
        version = -1 if version is None else version
        if seen.get(table) != version:
            seen[table] = version
            changed.append(table)
    return changed, json.dumps(seen, sort_keys=True)


observe_bronze_job = dg.define_asset_job(
    "observe_bronze",
    selection=dg.AssetSelection.assets(*(key(t) for t in BRONZE_SOURCES)),
    description="Observe the bronze tables: their data version is the Delta version.",
)


@dg.sensor(
    name="bronze_observer",
    job=observe_bronze_job,
    minimum_interval_seconds=get_settings().automation_observe_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a bronze Delta version moves, observes the bronze source assets (data version = Delta "
    "version); the automation sensor then runs silver and gold.",
)
def bronze_observer(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
    changed, cursor = bronze_changes(lake.lake(), context.cursor)
    if not changed:
        return dg.SensorResult(skip_reason="no new bronze version", cursor=cursor)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=cursor, tags={"changed": ",".join(changed)})], cursor=cursor
    )


automation_sensor = dg.AutomationConditionSensorDefinition(
    "beazap_automation",
    target=dg.AssetSelection.all() | dg.AssetSelection.all_asset_checks(),
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Declarative automation: silver and gold follow bronze (eager), checks after builds and on cron.",
)

JOBS = [lake_compaction_job, lake_vacuum_job, retention_job, pg_partitions_job, ops_extraction_job, observe_bronze_job]
SENSORS = [bronze_observer, automation_sensor]
