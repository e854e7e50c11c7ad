"""Bronze: the observable source assets, the sensor that observes them, ops-action extraction, freshness.

- The bronze tables are *observable source assets*: their data version is the Delta table version,
  reported by the ``bronze_observer`` sensor (and the UI's "Observe"). The receiver writes
  ``webhook_events``/``quarantine``; the ``ops_action_extraction`` job writes ``ops_events``. Silver
  therefore runs only when a bronze version really moved.
- ``bronze_fresh`` warns when no webhook arrived for ``BEAZAP_FRESHNESS_BRONZE_MINUTES``.
"""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
import pyarrow as pa
from dagster import OpExecutionContext

from bronze import schema as bronze_schema
from core.settings import Settings
from orchestration import quality
from orchestration.common import OWNERS, check_result, delta_metadata, key, pool, table_schema
from orchestration.resources import LakeResource, OpsStoreResource
from storage import log_tail

BRONZE_SOURCES: Mapping[str, tuple[pa.Schema, str]] = {
    bronze_schema.WEBHOOK_EVENTS: (
        bronze_schema.WEBHOOK_EVENTS_SCHEMA,
        "Every accepted Evolution API webhook, raw and unchanged (the log). Written by the receiver "
        "with group commits; partitioned by received_date; change data feed on.",
    ),
    bronze_schema.QUARANTINE: (
        bronze_schema.QUARANTINE_SCHEMA,
        "Authenticated webhooks whose body could not be accepted (bad JSON or shape), kept as bytes.",
    ),
    bronze_schema.OPS_EVENTS: (
        bronze_schema.OPS_EVENTS_SCHEMA,
        "The operational action log (assign, transfer, resolve, route, message_sent…) extracted from the "
        "ops store every minute (job ops_action_extraction), so silver uses the same facts as the live store.",
    ),
}
EVERY_5_MINUTES = dg.AutomationCondition.cron_tick_passed("*/5 * * * *")


def _observable(table: str, schema: pa.Schema, description: str) -> dg.SourceAsset:
    @dg.observable_source_asset(
        key=key(table),
        group_name="bronze",
        description=description,
        metadata={
            "dagster/column_schema": table_schema(schema),
            "dagster/table_name": table,
            "owners": ", ".join(OWNERS),  # source assets take no owners argument
        },
        tags={"layer": "bronze"},
    )
    def _observe(lake: LakeResource) -> dg.ObserveResult:
        meta = delta_metadata(lake.lake(), table)
        return dg.ObserveResult(data_version=dg.DataVersion(str(meta["delta_version"])), metadata=meta)

    return _observe


bronze_sources = [_observable(t, s, d) for t, (s, d) in BRONZE_SOURCES.items()]


@dg.asset_check(
    asset=key(bronze_schema.WEBHOOK_EVENTS),
    name="bronze_fresh",
    description="The newest webhook is younger than BEAZAP_FRESHNESS_BRONZE_MINUTES (webhooks are arriving).",
    automation_condition=EVERY_5_MINUTES,
)
def bronze_fresh(lake: LakeResource) -> dg.AssetCheckResult:
    settings = lake.settings()
    outcome = quality.bronze_freshness(lake.lake(), settings.freshness_bronze_minutes)
    return check_result(outcome, dg.AssetCheckSeverity.WARN)


# -- ops action log → bronze/ops_events ---------------------------------------------------------------
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


ops_extraction_schedule = dg.ScheduleDefinition(
    name="ops_action_extraction_every_minute",
    job=ops_extraction_job,
    cron_schedule="* * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


# -- observing new bronze versions --------------------------------------------------------------------
def bronze_changes(lake: Any, cursor: str | None) -> tuple[list[str], str]:
    """Bronze tables whose Delta version moved since ``cursor`` (plain function).

    A table that does not exist yet counts as version ``-1``, so it is observed once and does not
    stay *missing* (eager automation waits for missing upstreams).
    """
    seen: dict[str, int] = json.loads(cursor) if cursor else {}
    changed: list[str] = []
    for table in BRONZE_SOURCES:
        # by commit path (storage.log_tail): delta-rs' listing is refused ("gap") while receivers append
        version = log_tail.latest_version(lake, table, seen.get(table, -1))
        if seen.get(table) != version:
            seen[table] = version
            changed.append(table)
    return changed, json.dumps(seen, sort_keys=True)


observe_bronze_job = dg.define_asset_job(
    "observe_bronze",
    selection=dg.AssetSelection.assets(*(key(t) for t in BRONZE_SOURCES)),
    description="Observe the bronze tables: their data version is the Delta version.",
)


def bronze_observer(settings: Settings) -> dg.SensorDefinition:
    """The sensor observing bronze every ``BEAZAP_AUTOMATION_OBSERVE_SECONDS``."""

    @dg.sensor(
        name="bronze_observer",
        job=observe_bronze_job,
        minimum_interval_seconds=settings.automation_observe_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="When a bronze Delta version moves, observes the bronze source assets (data version = Delta "
        "version); the automation sensor then runs silver and gold.",
    )
    def _sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
        changed, cursor = bronze_changes(lake.lake(), context.cursor)
        if not changed:
            return dg.SensorResult(skip_reason="no new bronze version", cursor=cursor)
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=cursor, tags={"changed": ",".join(changed)})], cursor=cursor
        )

    return _sensor


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=bronze_sources,
        asset_checks=[bronze_fresh],
        jobs=[ops_extraction_job, observe_bronze_job],
        schedules=[ops_extraction_schedule],
        sensors=[bronze_observer(settings)],
    )
