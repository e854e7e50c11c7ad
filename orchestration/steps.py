"""The build steps the Dagster assets run, as plain functions (also run by ``beazap build``).

Dagster adds scheduling, partitions and metadata around them; the command line adds a progress bar.
Both call these, so a build from cron or a shell writes exactly what the automation writes.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from core.settings import Settings
from storage.lake import Lake


def gold_days(first_key: str, last_key: str, latest_key: str | None) -> tuple[date, date | None, bool]:
    """The local days a gold run over partitions ``first_key…last_key`` replaces: ``(first, last, refresh)``.

    A range that reaches the latest partition (today in the default zone) stays open at the end, so
    instances whose zone is already in tomorrow are covered too, and it also replaces every older
    day whose rows changed (late data, running clocks): ``refresh`` is true.
    """
    first = date.fromisoformat(first_key)
    if latest_key is not None and last_key >= latest_key:
        return first, None, True
    return first, date.fromisoformat(last_key), False


def run_silver(lake: Lake, settings: Settings) -> dict[str, dict]:
    """Apply every new bronze version to silver (incremental; the first run is a full build)."""
    from silver.pipeline import build_silver

    return build_silver(lake, settings=settings)


def run_gold(
    lake: Lake, engine: Any, settings: Settings, first: date | None, last: date | None, refresh: bool
) -> dict[str, dict]:
    """Recompute gold from silver and replace the local days ``first…last`` (``None``: open end);
    with ``refresh`` also every other day whose rows changed."""
    from gold.runner import build_gold

    return build_gold(lake, engine=engine, settings=settings, days=(first, last), refresh_changed=refresh)
