"""Maintenance: compaction, vacuum, retention and PostgreSQL partitions — jobs and their schedules.

| what | when | job |
| --- | --- | --- |
| compaction (``optimize``) + checkpoint | hourly | ``lake_compaction`` |
| ``vacuum`` (keeps ``BEAZAP_VACUUM_RETENTION_HOURS`` of time travel) | daily 03:30 | ``lake_vacuum`` |
| retention deletes (lake + ops store) | daily 02:30 | ``retention`` |
| PostgreSQL ``messages`` partitions | daily 01:30 | ``pg_partitions`` |

Daily schedules run in ``BEAZAP_DEFAULT_TIMEZONE``. Every op that writes a Delta table runs in the
pool of its layer (limit 1), so it never races the silver/gold builds of that layer.
"""

import json

import dagster as dg
from dagster import OpExecutionContext

from core.settings import Settings
from orchestration.common import pool
from orchestration.resources import LakeResource, OpsStoreResource
from storage.lake import LAYERS


# -- compaction / checkpoint / vacuum -----------------------------------------------------------------
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
        for table in the_lake.tables([layer]):
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
def maintain_partitions(context: OpExecutionContext, lake: LakeResource, ops_store: OpsStoreResource) -> None:
    from storage import partitions

    settings = lake.settings()
    report = partitions.maintain(ops_store.engine(), live_window_days=settings.live_window_days)
    context.log.info(f"partitions created={report.created} dropped={report.dropped} deleted={report.deleted_rows}")


@dg.job(name="pg_partitions", description="PostgreSQL partition maintenance of the live messages table.")
def pg_partitions_job() -> None:
    maintain_partitions()


JOBS = [lake_compaction_job, lake_vacuum_job, retention_job, pg_partitions_job]


def schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    """Hourly compaction; daily vacuum, retention and partitions in ``BEAZAP_DEFAULT_TIMEZONE``."""
    running = dg.DefaultScheduleStatus.RUNNING
    daily = {"execution_timezone": settings.default_timezone, "default_status": running}
    return [
        dg.ScheduleDefinition(
            name="lake_compaction_hourly", job=lake_compaction_job, cron_schedule="7 * * * *", default_status=running
        ),
        dg.ScheduleDefinition(name="lake_vacuum_daily", job=lake_vacuum_job, cron_schedule="30 3 * * *", **daily),
        dg.ScheduleDefinition(name="retention_daily", job=retention_job, cron_schedule="30 2 * * *", **daily),
        dg.ScheduleDefinition(name="pg_partitions_daily", job=pg_partitions_job, cron_schedule="30 1 * * *", **daily),
    ]


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(jobs=JOBS, schedules=schedules(settings))
