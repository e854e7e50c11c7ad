"""Gold: the daily-partitioned aggregates, conversation insights, and the checks on their results.

- ``gold_tables`` is one multi-asset (:func:`orchestration.steps.run_gold`, the step ``beazap build
  gold`` runs), **partitioned by local day** (:func:`gold_partitions`) with a single-run backfill
  policy: a backfill of a year is one run and one gold computation. Eager automation requests only
  the latest partition (today), in the tick after silver materialized (a partitioned asset never
  shares a run with unpartitioned silver); that run replaces today onwards *and* every older day
  whose rows changed (late data, clocks still running), recording those days as materializations of
  their partitions. A new day's partition is missing at midnight, so the automation builds it even
  without new data — which also closes yesterday.
- ``conversation_insights`` stays unpartitioned.
- Checks: ``gold_fresh`` and ``layer_row_counts`` on every build/cron, ``live_vs_gold_yesterday``
  daily at 06:00 in the default zone.
"""

from collections.abc import Iterator, Mapping

import dagster as dg
import pyarrow as pa
from dagster import AssetExecutionContext

from core.settings import Settings
from orchestration import quality
from orchestration.common import EAGER, OWNERS, check_result, delta_metadata, key, pool, scalars, table_schema
from orchestration.resources import LakeResource, OpsStoreResource
from orchestration.steps import gold_days, run_gold
from silver import schema as silver_schema


def _gold_tables() -> tuple[str, ...]:
    from gold.runner import GOLD_TABLES

    return tuple(f"gold/{name}" for name in GOLD_TABLES)


GOLD_TABLES = _gold_tables()
GOLD_DEPS = [key(t) for t in (silver_schema.MESSAGES, silver_schema.CONVERSATIONS, silver_schema.CALLS)] + [
    key(silver_schema.OPS_EVENTS)
]
INSIGHTS = "gold/conversation_insights"
CONVERSATION_FACTS = "gold/conversation_facts"
EVERY_5_MINUTES = dg.AutomationCondition.cron_tick_passed("*/5 * * * *")
AFTER_MATERIALIZATION = dg.AutomationCondition.eager()


def gold_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """One partition per local calendar day. A key (``2026-03-08``) means that calendar day in *each
    instance's own zone* — gold's day columns are local per instance — while the partition list
    itself (which day is "today") follows ``BEAZAP_DEFAULT_TIMEZONE``."""
    return dg.DailyPartitionsDefinition(
        start_date=settings.gold_partitions_start.isoformat(),
        timezone=settings.default_timezone,
        end_offset=1,  # today is a partition: the one the automation keeps current
    )


def gold_tables_asset(partitions: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    """The gold multi-asset over ``partitions``."""
    specs = [
        dg.AssetSpec(
            key=key(table),
            group_name="gold",
            description=f"Gold aggregate `{table.split('/')[1]}` (gold/{table.split('/')[1]}.sql over silver, "
            "DuckDB). Definitions in docs/metrics.md. Partitioned by local day.",
            owners=OWNERS,
            deps=GOLD_DEPS,
            metadata={"dagster/table_name": table},
            tags={"layer": "gold"},
            kinds={"delta", "duckdb"},
            automation_condition=EAGER,
            partitions_def=partitions,
        )
        for table in GOLD_TABLES
    ]

    @dg.multi_asset(
        name="gold_tables",
        specs=specs,
        description="Rebuild gold from silver with DuckDB and replace the run's local days (daily partitions; "
        "the latest partition also replaces older days whose rows changed).",
        pool=pool("gold"),
        can_subset=False,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def gold_tables(
        context: AssetExecutionContext, lake: LakeResource, ops_store: OpsStoreResource
    ) -> Iterator[dg.MaterializeResult]:
        the_lake = lake.lake()
        key_range = context.partition_key_range
        first, last, refresh = gold_days(key_range.start, key_range.end, partitions.get_last_partition_key())
        stats = run_gold(the_lake, ops_store.engine(), lake.settings(), first, last, refresh)
        late = sorted({d for s in stats.values() for d in s["late_days"]})
        context.log.info(f"gold built: {len(stats)} tables, days {first}…{last or 'open'}, late days {late or 'none'}")
        _record_late_days(context, partitions, late, stats)
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
                    **scalars({f"build_{k}": v for k, v in build.items()}),
                    "late_days": dg.MetadataValue.json((stats.get(name) or {}).get("late_days", [])),
                    **meta,
                },
                data_version=dg.DataVersion(str(meta["delta_version"])),
            )

    return gold_tables


def _record_late_days(
    context: AssetExecutionContext, partitions: dg.PartitionsDefinition, late: list[str], stats: Mapping[str, dict]
) -> None:
    """Each older day the run replaced because its rows changed is recorded as that partition's
    materialization (the UI's partition view then shows when late data last rewrote it)."""
    known = set(partitions.get_partition_keys())
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
    build = scalars({f"build_{k}": v for k, v in (stats.get("conversation_insights") or {}).items()})
    return dg.MaterializeResult(metadata={**build, **meta}, data_version=dg.DataVersion(str(meta["delta_version"])))


# -- checks -------------------------------------------------------------------------------------------
@dg.asset_check(
    asset=key(CONVERSATION_FACTS),
    name="gold_fresh",
    description="Gold was rebuilt at most BEAZAP_FRESHNESS_GOLD_MINUTES before bronze's last commit.",
    automation_condition=EVERY_5_MINUTES,
)
def gold_fresh(lake: LakeResource) -> dg.AssetCheckResult:
    settings = lake.settings()
    outcome = quality.gold_freshness(lake.lake(), list(GOLD_TABLES), settings.freshness_gold_minutes)
    return check_result(outcome, dg.AssetCheckSeverity.WARN)


@dg.asset_check(
    asset=key(CONVERSATION_FACTS),
    name="layer_row_counts",
    description="Row counts agree: silver messages ≤ bronze message events, one gold fact per silver "
    "conversation, gold volume ≤ silver messages.",
    automation_condition=AFTER_MATERIALIZATION,
)
def layer_row_counts(lake: LakeResource) -> dg.AssetCheckResult:
    return check_result(quality.layer_row_counts(lake.lake()), dg.AssetCheckSeverity.ERROR)


def live_vs_gold_yesterday(settings: Settings) -> dg.AssetChecksDefinition:
    """Reconciliation with the live store, daily at 06:00 in ``BEAZAP_DEFAULT_TIMEZONE``."""

    @dg.asset_check(
        asset=key(CONVERSATION_FACTS),
        name="live_vs_gold_yesterday",
        description="Conversations opened yesterday (instance time zone) are the same in the live ops store and gold.",
        automation_condition=dg.AutomationCondition.cron_tick_passed(
            "0 6 * * *", cron_timezone=settings.default_timezone
        ),
    )
    def _check(lake: LakeResource, ops_store: OpsStoreResource) -> dg.AssetCheckResult:
        return check_result(quality.reconcile_yesterday(lake.lake(), ops_store.engine()), dg.AssetCheckSeverity.ERROR)

    return _check


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[gold_tables_asset(gold_partitions(settings)), conversation_insights],
        asset_checks=[gold_fresh, layer_row_counts, live_vs_gold_yesterday(settings)],
    )
