"""Dagster asset checks: thin wrappers over :mod:`orchestration.quality`.

Failing checks show red on the asset in the UI (ERROR severity for correctness, WARN for
freshness). Checks on silver/gold run whenever their asset is materialized (automation); the
freshness and reconciliation checks also run on a cron of their own.
"""

import dagster as dg

from bronze import schema as bronze_schema
from core.settings import get_settings
from orchestration import quality
from orchestration.assets import GOLD_TABLES, key
from orchestration.resources import LakeResource, OpsStoreResource
from silver import schema as silver_schema

AFTER_MATERIALIZATION = dg.AutomationCondition.eager()
EVERY_5_MINUTES = dg.AutomationCondition.cron_tick_passed("*/5 * * * *")
DAILY_AT_6 = dg.AutomationCondition.cron_tick_passed("0 6 * * *", cron_timezone=get_settings().default_timezone)
CONVERSATION_FACTS = "gold/conversation_facts"


def _result(outcome: quality.Outcome, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    metadata = {k: v for k, v in outcome.metadata.items() if v is not None}
    metadata["summary"] = outcome.description
    return dg.AssetCheckResult(passed=outcome.passed, severity=severity, metadata=_flatten(metadata))


def _flatten(metadata: dict) -> dict:
    out: dict = {}
    for name, value in metadata.items():
        out[name] = dg.MetadataValue.json(value) if isinstance(value, dict | list) else value
    return out


@dg.asset_check(
    asset=key(silver_schema.MESSAGES),
    name="message_id_unique",
    description="silver/messages has one row per (instance_id, message_id).",
    blocking=True,
    automation_condition=AFTER_MATERIALIZATION,
)
def message_id_unique(lake: LakeResource) -> dg.AssetCheckResult:
    return _result(quality.message_id_uniqueness(lake.lake()), dg.AssetCheckSeverity.ERROR)


@dg.asset_check(
    asset=key(silver_schema.CONVERSATIONS),
    name="conversation_id_unique",
    description="silver/conversations has one row per conversation_id.",
    blocking=True,
    automation_condition=AFTER_MATERIALIZATION,
)
def conversation_id_unique(lake: LakeResource) -> dg.AssetCheckResult:
    return _result(quality.conversation_id_uniqueness(lake.lake()), dg.AssetCheckSeverity.ERROR)


@dg.asset_check(
    asset=key(silver_schema.REJECTS),
    name="reject_rate",
    description="Share of bronze webhooks silver could not parse stays under BEAZAP_MAX_REJECT_RATE.",
    automation_condition=AFTER_MATERIALIZATION,
)
def reject_rate(lake: LakeResource) -> dg.AssetCheckResult:
    settings = lake.settings()
    return _result(quality.reject_rate(lake.lake(), settings.max_reject_rate), dg.AssetCheckSeverity.ERROR)


@dg.asset_check(
    asset=key(bronze_schema.WEBHOOK_EVENTS),
    name="bronze_fresh",
    description="The newest webhook is younger than BEAZAP_FRESHNESS_BRONZE_MINUTES (webhooks are arriving).",
    automation_condition=EVERY_5_MINUTES,
)
def bronze_fresh(lake: LakeResource) -> dg.AssetCheckResult:
    settings = lake.settings()
    return _result(quality.bronze_freshness(lake.lake(), settings.freshness_bronze_minutes), dg.AssetCheckSeverity.WARN)


@dg.asset_check(
    asset=key(CONVERSATION_FACTS),
    name="gold_fresh",
    description="Gold was rebuilt at most BEAZAP_FRESHNESS_GOLD_MINUTES before bronze's last commit.",
    automation_condition=EVERY_5_MINUTES,
)
def gold_fresh(lake: LakeResource) -> dg.AssetCheckResult:
    settings = lake.settings()
    outcome = quality.gold_freshness(lake.lake(), list(GOLD_TABLES), settings.freshness_gold_minutes)
    return _result(outcome, dg.AssetCheckSeverity.WARN)


@dg.asset_check(
    asset=key(CONVERSATION_FACTS),
    name="layer_row_counts",
    description="Row counts agree: silver messages ≤ bronze message events, one gold fact per silver "
    "conversation, gold volume ≤ silver messages.",
    automation_condition=AFTER_MATERIALIZATION,
)
def layer_row_counts(lake: LakeResource) -> dg.AssetCheckResult:
    return _result(quality.layer_row_counts(lake.lake()), dg.AssetCheckSeverity.ERROR)


@dg.asset_check(
    asset=key(CONVERSATION_FACTS),
    name="live_vs_gold_yesterday",
    description="Conversations opened yesterday (instance time zone) are the same in the live ops store and gold.",
    automation_condition=DAILY_AT_6,
)
def live_vs_gold_yesterday(lake: LakeResource, ops_store: OpsStoreResource) -> dg.AssetCheckResult:
    return _result(quality.reconcile_yesterday(lake.lake(), ops_store.engine()), dg.AssetCheckSeverity.ERROR)


ALL_CHECKS = [
    message_id_unique,
    conversation_id_unique,
    reject_rate,
    bronze_fresh,
    gold_fresh,
    layer_row_counts,
    live_vs_gold_yesterday,
]
