"""Silver: one multi-asset writing every silver table in one pass, and its correctness checks.

``silver_tables`` runs :func:`orchestration.steps.run_silver` (the step ``beazap build silver``
runs) with ``AutomationCondition.eager()``: the automation sensor runs it as soon as a new
bronze version is observed. Its writer takes the ``lake_silver`` pool (limit 1).
"""

from collections.abc import Iterator, Mapping

import dagster as dg
import pyarrow as pa
from dagster import AssetExecutionContext

from bronze import schema as bronze_schema
from core.settings import Settings
from orchestration import quality
from orchestration.common import EAGER, OWNERS, check_result, delta_metadata, key, pool, scalars, table_schema
from orchestration.resources import LakeResource
from orchestration.steps import run_silver
from silver import schema as silver_schema

SILVER_TABLES: Mapping[str, tuple[pa.Schema, str]] = {
    silver_schema.MESSAGES: (silver_schema.MESSAGES_SCHEMA, "One row per message (instance + key.id), latest state."),
    silver_schema.MESSAGE_EVENTS: (silver_schema.MESSAGE_EVENTS_SCHEMA, "Acks, edits, revokes, reactions, deletes."),
    silver_schema.CONVERSATIONS: (
        silver_schema.CONVERSATIONS_SCHEMA,
        "Direct chats cut into conversations (docs/metrics.md, Conversations) with ops actions applied.",
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
AFTER_MATERIALIZATION = dg.AutomationCondition.eager()

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
    the_lake = lake.lake()
    stats = run_silver(the_lake, lake.settings())
    context.log.info(f"silver built: {len(stats)} tables")
    for table in SILVER_TABLES:
        extra = {f"build_{k}": v for k, v in (stats.get(table) or stats.get(table.split("/")[1]) or {}).items()}
        yield dg.MaterializeResult(
            asset_key=key(table),
            metadata={**scalars(extra), **delta_metadata(the_lake, table)},
            data_version=dg.DataVersion(str(the_lake.version(table) if the_lake.exists(table) else -1)),
        )


@dg.asset_check(
    asset=key(silver_schema.MESSAGES),
    name="message_id_unique",
    description="silver/messages has one row per (instance_id, message_id).",
    blocking=True,
    automation_condition=AFTER_MATERIALIZATION,
)
def message_id_unique(lake: LakeResource) -> dg.AssetCheckResult:
    return check_result(quality.message_id_uniqueness(lake.lake()), dg.AssetCheckSeverity.ERROR)


@dg.asset_check(
    asset=key(silver_schema.CONVERSATIONS),
    name="conversation_id_unique",
    description="silver/conversations has one row per conversation_id.",
    blocking=True,
    automation_condition=AFTER_MATERIALIZATION,
)
def conversation_id_unique(lake: LakeResource) -> dg.AssetCheckResult:
    return check_result(quality.conversation_id_uniqueness(lake.lake()), dg.AssetCheckSeverity.ERROR)


@dg.asset_check(
    asset=key(silver_schema.REJECTS),
    name="reject_rate",
    description="Share of bronze webhooks silver could not parse stays under BEAZAP_MAX_REJECT_RATE.",
    automation_condition=AFTER_MATERIALIZATION,
)
def reject_rate(lake: LakeResource) -> dg.AssetCheckResult:
    settings = lake.settings()
    return check_result(quality.reject_rate(lake.lake(), settings.max_reject_rate), dg.AssetCheckSeverity.ERROR)


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[silver_tables], asset_checks=[message_id_unique, conversation_id_unique, reject_rate])
