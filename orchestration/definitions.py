"""BeaZap's Dagster code location (``dagster dev -w workspace.yaml`` loads ``defs`` from here).

Assets for every bronze/silver/gold table (``orchestration.assets``), asset checks
(``orchestration.checks``), maintenance jobs, schedules and sensors (``orchestration.jobs``), and
resources configured from ``BEAZAP_*`` settings (``orchestration.resources``). Start the webserver
and the daemon as described in ``docs/orchestration.md``.
"""

import dagster as dg

from orchestration.assets import ALL_ASSETS
from orchestration.checks import ALL_CHECKS
from orchestration.jobs import JOBS, SENSORS, schedules
from orchestration.resources import default_resources


def build_definitions() -> dg.Definitions:
    """The Definitions object (a function so tests can build it after changing settings)."""
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        jobs=JOBS,
        schedules=schedules,
        sensors=SENSORS,
        resources=default_resources(),
        # One process per run (not per step): a step subprocess costs a full import of Dagster and
        # BeaZap, which dominated the bronze → gold delay; the writers still take their pools.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
