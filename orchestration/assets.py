"""Dagster assets: every bronze, silver and gold Delta table, grouped by layer.

- **bronze** tables are *observable source assets*: their data version is the Delta table version,
  reported by the ``bronze_observer`` sensor (and the UI's "Observe"). The receiver writes
  ``webhook_events``/``quarantine``; the ``ops_action_extraction`` job writes ``ops_events``. Silver
  therefore runs only when a bronze version really moved.
- **silver** is one multi-asset (``build_silver`` writes every silver table in one pass) with
  ``AutomationCondition.eager()``: the automation sensor runs it as soon as a new bronze version is
  observed.
- **gold** is another multi-asset (``build_gold``), **partitioned by local day**
  (``GOLD_PARTITIONS``) with a single-run backfill policy: a backfill of a year is one run and one
  gold computation. Eager automation requests only the latest partition (today), in the tick after
  silver materialized (a partitioned asset never shares a run with unpartitioned silver); that run
  replaces today onwards *and* every older day whose rows changed (late data, clocks still running),
  recording those days as materializations of their partitions. A new day's partition is missing at
  midnight, so the automation builds it even without new data — which also closes yesterday.
  ``conversation_insights`` stays unpartitioned.
- Each writer has a concurrency pool per layer (``lake_silver``, ``lake_gold``…): with the pool
  limit of 1 (``orchestration/dagster.yaml``) two runs never write the same Delta table at once.

Assets only call the plain functions of each layer and report their statistics.
"""

from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

import dagster as dg
import pyarrow as pa
from dagster import AssetExecutionContext

from bronze import schema as bronze_schema
from core.settings import get_settings
from orchestration.resources import LakeResource, OpsStoreResource
from silver import schema as silver_schema
from storage.lake import Lake

OWNERS = ["team:beazap-data"]
EAGER = dg.AutomationCondition.eager()


def pool(layer: str) -> str:
    """Concurrency pool of the writers of one lake layer (limit 1: one writer at a time)."""
    return f"lake_{layer}"


def key(table: str) -> dg.AssetKey:
    """``bronze/webhook_events`` → AssetKey(["bronze", "webhook_events"])."""
    return dg.AssetKey(table.split("/"))


def table_schema(schema: pa.Schema) -> dg.TableSchema:
    """Dagster column schema from an Arrow schema (shown in the asset's Columns tab)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=f.name, type=str(f.type), constraints=dg.TableColumnConstraints(nullable=f.nullable))
            for f in schema
        ]
    )


def delta_metadata(lake: Lake, table: str) -> dict[str, Any]:
    """Row count, Delta version and file count of a table, as Dagster metadata."""
    from storage.maintenance import table_stats

    dt = lake.open_or_none(table)
    if dt is None:
        return {"delta_version": -1, "dagster/row_count": 0}
    stats = table_stats(dt)
    return {
        "delta_version": stats["version"],
        "dagster/row_count": stats["rows"],
        "files": stats["files"],
        "dagster/uri": lake.uri(table),
    }


# -- bronze ------------------------------------------------------------------------------------------
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
        the_lake = lake.lake()
        meta = delta_metadata(the_lake, table)
        return dg.ObserveResult(data_version=dg.DataVersion(str(meta["delta_version"])), metadata=meta)

    return _observe


bronze_sources = [_observable(t, s, d) for t, (s, d) in BRONZE_SOURCES.items()]


# -- silver ------------------------------------------------------------------------------------------
SILVER_TABLES: Mapping[str, tuple[pa.Schema, str]] = {
    silver_schema.MESSAGES: (silver_schema.MESSAGES_SCHEMA, "One row per message (instance + key.id), latest state."),
    silver_schema.MESSAGE_EVENTS: (silver_schema.MESSAGE_EVENTS_SCHEMA, "Acks, edits, revokes, reactions, deletes."),
    silver_schema.CONVERSATIONS: (
        silver_schema.CONVERSATIONS_SCHEMA,
        "Direct chats cut into conversations (METRICS.md sessionization) with ops actions applied.",
    ),
    silver_schema.CONTACTS: (silver_schema.CONTACTS_SCHEMA, "Contacts by E.164 phone with their LID mapping."),
    silver_schema.GROUPS: (silver_schema.GROUPS_SCHEMA, "Group metadata (latest)."),
    silver_schema.GROUP_PARTICIPANTS: (silver_schema.GROUP_PARTICIPANTS_SCHEMA, "Group membership changes."),
    silver_schema.CALLS: (silver_schema.CALLS_SCHEMA, "One row per call id with its outcome."),
    silver_schema.CONNECTION_EVENTS: (silver_schema.CONNECTION_EVENTS_SCHEMA, "Instance connection state changes."),
    silver_schema.OPS_EVENTS: (silver_schema.OPS_EVENTS_SCHEMA, "Ops actions, deduplicated."),
    silver_schema.REJECTS: (silver_schema.REJECTS_SCHEMA, "Bronze rows silver could not parse, with the reason."),
}
SILVER_DEPS = [key(bronze_schema.WEBHOOK_EVENTS), key(bronze_schema.OPS_EVENTS)]

silver_specs = [
    dg.AssetSpec(
        key=key(table),
        group_name="silver",
        description=description,
        owners=OWNERS,
        deps=SILVER_DEPS,
        metadata={"dagster/column_schema": table_schema(schema), "dagster/table_name": table},
        tags={"layer": "silver"},
        kinds={"delta", "python"},
        automation_condition=EAGER,
    )
    for table, (schema, description) in SILVER_TABLES.items()
]


@dg.multi_asset(
    name="silver_tables",
    specs=silver_specs,
    description="Normalize new bronze versions into every silver table (incremental merge by key).",
    pool=pool("silver"),
    can_subset=False,
)
def silver_tables(context: AssetExecutionContext, lake: LakeResource) -> Iterator[dg.MaterializeResult]:
    from silver.pipeline import build_silver

    the_lake = lake.lake()
    stats = build_silver(the_lake, settings=lake.settings())
    context.log.info(f"silver built: {len(stats)} tables")
    for table in SILVER_TABLES:
        extra = {f"build_{k}": v for k, v in (stats.get(table) or stats.get(table.split("/")[1]) or {}).items()}
        yield dg.MaterializeResult(
            asset_key=key(table),
            metadata={**_scalars(extra), **delta_metadata(the_lake, table)},
            data_version=dg.DataVersion(str(the_lake.version(table) if the_lake.exists(table) else -1)),
        )


def _scalars(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if isinstance(v, int | float | str | bool)}


# -- gold --------------------------------------------------------------------------------------------
def _gold_tables() -> tuple[str, ...]:
    from gold.runner import GOLD_TABLES

    return tuple(f"gold/{name}" for name in GOLD_TABLES)


GOLD_TABLES = _gold_tables()
GOLD_DEPS = [key(t) for t in (silver_schema.MESSAGES, silver_schema.CONVERSATIONS, silver_schema.CALLS)] + [
    key(silver_schema.OPS_EVENTS)
]

GOLD_PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=get_settings().gold_partitions_start.isoformat(),
    timezone=get_settings().default_timezone,
    end_offset=1,  # today is a partition: the one the automation keeps current
)
"""One partition per local calendar day. A key (``2026-03-08``) means that calendar day in *each
instance's own zone* — gold's day columns are local per instance — while the partition list itself
(which day is "today") follows ``BEAZAP_DEFAULT_TIMEZONE``."""

gold_specs = [
    dg.AssetSpec(
        key=key(table),
        group_name="gold",
        description=f"Gold aggregate `{table.split('/')[1]}` (gold/{table.split('/')[1]}.sql over silver, DuckDB). "
        "Definitions in METRICS.md. Partitioned by local day.",
        owners=OWNERS,
        deps=GOLD_DEPS,
        metadata={"dagster/table_name": table},
        tags={"layer": "gold"},
        kinds={"delta", "duckdb"},
        automation_condition=EAGER,
        partitions_def=GOLD_PARTITIONS,
    )
    for table in GOLD_TABLES
]


def gold_days(partition_range: dg.PartitionKeyRange, last_key: str | None) -> tuple[date, date | None, bool]:
    """The local days a gold run replaces: ``(first, last, refresh)``.

    A range that reaches the latest partition (today in the default zone) stays open at the end, so
    instances whose zone is already in tomorrow are covered too, and it also replaces every older
    day whose rows changed (late data, running clocks): ``refresh`` is true.
    """
    first = date.fromisoformat(partition_range.start)
    if last_key is not None and partition_range.end >= last_key:
        return first, None, True
    return first, date.fromisoformat(partition_range.end), False


@dg.multi_asset(
    name="gold_tables",
    specs=gold_specs,
    description="Rebuild gold from silver with DuckDB and replace the run's local days (daily partitions; "
    "the latest partition also replaces older days whose rows changed).",
    pool=pool("gold"),
    can_subset=False,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def gold_tables(
    context: AssetExecutionContext, lake: LakeResource, ops_store: OpsStoreResource
) -> Iterator[dg.MaterializeResult]:
    from gold.runner import build_gold

    the_lake = lake.lake()
    first, last, refresh = gold_days(context.partition_key_range, GOLD_PARTITIONS.get_last_partition_key())
    stats = build_gold(
        the_lake, engine=ops_store.engine(), settings=lake.settings(), days=(first, last), refresh_changed=refresh
    )
    late = sorted({d for s in stats.values() for d in s["late_days"]})
    context.log.info(f"gold built: {len(stats)} tables, days {first}…{last or 'open'}, late days {late or 'none'}")
    _record_late_days(context, late, stats)
    for table in GOLD_TABLES:
        name = table.split("/")[1]
        meta = delta_metadata(the_lake, table)
        dt = the_lake.open_or_none(table)
        if dt is not None:
            meta["dagster/column_schema"] = table_schema(pa.schema(dt.schema().to_arrow()))
        build = {k: v for k, v in (stats.get(name) or {}).items() if k != "late_days"}
        yield dg.MaterializeResult(
            asset_key=key(table),
            metadata={
                **_scalars({f"build_{k}": v for k, v in build.items()}),
                "late_days": dg.MetadataValue.json((stats.get(name) or {}).get("late_days", [])),
                **meta,
            },
            data_version=dg.DataVersion(str(meta["delta_version"])),
        )


def _record_late_days(context: AssetExecutionContext, late: list[str], stats: Mapping[str, dict]) -> None:
    """Each older day the run replaced because its rows changed is recorded as that partition's
    materialization (the UI's partition view then shows when late data last rewrote it)."""
    known = set(GOLD_PARTITIONS.get_partition_keys())
    run_keys = set(context.partition_keys)
    for day in late:
        if day not in known or day in run_keys:
            continue
        for table in GOLD_TABLES:
            if day in (stats.get(table.split("/")[1]) or {}).get("late_days", []):
                context.log_event(
                    dg.AssetMaterialization(
                        asset_key=key(table),
                        partition=day,
                        description="Rows changed by late data; replaced by the latest partition's run.",
                        metadata={"replaced_by_run_of": dg.MetadataValue.text(",".join(sorted(run_keys)))},
                    )
                )


INSIGHTS = "gold/conversation_insights"


def _insights_schema() -> pa.Schema:
    from llm.insights import INSIGHTS_SCHEMA

    return INSIGHTS_SCHEMA


@dg.asset(
    key=key(INSIGHTS),
    group_name="gold",
    description="Topic, intent, sentiment, urgency, summary and resolution quality of every closed conversation "
    "(LLM when configured, cached and budgeted; rule-based otherwise).",
    owners=OWNERS,
    deps=[key(silver_schema.CONVERSATIONS), key(silver_schema.MESSAGES)],
    metadata={"dagster/column_schema": table_schema(_insights_schema()), "dagster/table_name": INSIGHTS},
    tags={"layer": "gold"},
    kinds={"delta", "python"},
    automation_condition=EAGER,
    pool=pool("gold_insights"),
)
def conversation_insights(lake: LakeResource, ops_store: OpsStoreResource) -> dg.MaterializeResult:
    from llm.insights import build_insights

    the_lake = lake.lake()
    stats = build_insights(the_lake, engine=ops_store.engine(), settings=lake.settings())
    meta = delta_metadata(the_lake, INSIGHTS)
    build = _scalars({f"build_{k}": v for k, v in (stats.get("conversation_insights") or {}).items()})
    return dg.MaterializeResult(metadata={**build, **meta}, data_version=dg.DataVersion(str(meta["delta_version"])))


ALL_ASSETS: list[Any] = [*bronze_sources, silver_tables, gold_tables, conversation_insights]
LAKE_TABLES: tuple[str, ...] = (
    *BRONZE_SOURCES,
    *SILVER_TABLES,
    *GOLD_TABLES,
    INSIGHTS,
)
