"""BeaZap's Dagster code location (``dagster dev -w workspace.yaml`` loads ``defs`` from here).

The Definitions are the merge of one module per domain (:mod:`orchestration.defs`): ``bronze``
(observable sources, observer sensor, ops-action extraction), ``silver`` and ``gold`` (assets,
partitions, checks), ``maintenance`` (compaction, vacuum, retention, partition jobs and schedules)
and ``automation`` (the declarative-automation sensor), plus the resources of
:mod:`orchestration.resources`. ``defs`` is lazy (``@dg.definitions``): settings are read when
Dagster loads the code location, never at import. Start the webserver and the daemon as described
in ``docs/orchestration.md``.
"""

from __future__ import annotations

import dagster as dg

from core.settings import Settings, get_settings
from orchestration.defs import automation, bronze, gold, maintenance, silver
from orchestration.resources import default_resources

DOMAINS = (bronze, silver, gold, maintenance, automation)


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """The merged Definitions (``settings``: the values partitions and schedules are built with)."""
    settings = settings or get_settings()
    return dg.Definitions.merge(
        *(domain.defs(settings) for domain in DOMAINS),
        dg.Definitions(
            resources=default_resources(),
            # One process per run (not per step): a step subprocess costs a full import of Dagster and
            # BeaZap, which dominated the bronze → gold delay; the writers still take their pools.
            executor=dg.in_process_executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()


LAKE_TABLES: tuple[str, ...] = (*bronze.BRONZE_SOURCES, *silver.SILVER_TABLES, *gold.GOLD_TABLES, gold.INSIGHTS)
"""Every lake table the code location shows as an asset."""
