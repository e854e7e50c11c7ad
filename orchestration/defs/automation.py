"""Automation across the domains: the declarative-automation sensor that keeps silver and gold current.

Silver and gold follow bronze (eager conditions on their assets); checks run after builds and on
their cron conditions. The sensor evaluates every asset and check of the code location.
"""

import dagster as dg

from core.settings import Settings

automation_sensor = dg.AutomationConditionSensorDefinition(
    "beazap_automation",
    target=dg.AssetSelection.all() | dg.AssetSelection.all_asset_checks(),
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Declarative automation: silver and gold follow bronze (eager), checks after builds and on cron.",
)


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(sensors=[automation_sensor])
