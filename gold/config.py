"""Per-instance configuration as the Arrow tables gold's SQL joins (``cfg.*``).

The model (time zone, effective-dated business hours with holidays, SLA targets per clock with
their basis, defaults from the settings) is :mod:`core.instance_config`, documented in
``docs/api.md`` § Configuring business hours and SLA; an interval (a clock) is measured with the
schedule version in force on the local day it **started**. A bad stored value never aborts a build:
it is logged and that instance uses the defaults.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from core.instance_config import CLOCKS, InstanceConfig, Target
from core.instance_config import BusinessHours as BusinessHours  # re-exported for gold's fixtures


@dataclass(frozen=True)
class GoldInstance:
    """One instance's configuration, as gold builds it."""

    instance_id: str
    config: InstanceConfig


def load_configs(engine: Any | None, instance_ids: Iterable[str]) -> list[GoldInstance]:
    """Configs for ``instance_ids`` and every stored instance (defaults for those not stored)."""
    stored: dict[str, InstanceConfig] = {}
    if engine is not None:
        from storage.instances import load_configs as load_stored

        stored = load_stored(engine)
    ids = sorted(set(instance_ids) | set(stored))
    return [GoldInstance(i, stored.get(i) or InstanceConfig()) for i in ids]


ATTENDANTS_SCHEMA = pa.schema([("instance_id", pa.string()), ("attendant_id", pa.string()), ("team_id", pa.string())])


def load_attendants(engine: Any | None) -> pa.Table:
    """Attendants and their current team from the ops store (fallback team when the action log has none)."""
    rows: dict[str, list[Any]] = {"instance_id": [], "attendant_id": [], "team_id": []}
    if engine is not None:
        from sqlalchemy import inspect, select

        from storage.tables import attendants

        if inspect(engine).has_table("attendants"):
            with engine.connect() as conn:
                for row in conn.execute(select(attendants.c.instance_id, attendants.c.id, attendants.c.team_id)):
                    rows["instance_id"].append(row[0])
                    rows["attendant_id"].append(row[1])
                    rows["team_id"].append(row[2])
    return pa.table(rows, schema=ATTENDANTS_SCHEMA)


def config_tables(configs: list[GoldInstance]) -> dict[str, pa.Table]:
    """Arrow tables the gold SQL joins: ``cfg.instances``, ``cfg.schedule``, ``cfg.holidays``, ``cfg.sla``."""
    inst: dict[str, list[Any]] = {"instance_id": [], "timezone": [], "include_groups": [], "at_risk_ratio": []}
    sched: dict[str, list[Any]] = {
        "instance_id": [],
        "version_id": [],
        "effective_from": [],
        "weekday": [],
        "open_min": [],
        "close_min": [],
    }
    versions: dict[str, list[Any]] = {"instance_id": [], "version_id": [], "effective_from": []}
    hol: dict[str, list[Any]] = {"instance_id": [], "day": []}
    sla: dict[str, list[Any]] = {"instance_id": [], "team_id": [], "target": [], "basis": [], "seconds": []}
    for item in configs:
        cfg = item.config
        inst["instance_id"].append(item.instance_id)
        inst["timezone"].append(cfg.timezone)
        inst["include_groups"].append(cfg.sla_policy.include_groups)
        inst["at_risk_ratio"].append(cfg.sla_policy.at_risk_ratio)
        for vid, version in enumerate(cfg.business_hours.versions):
            versions["instance_id"].append(item.instance_id)
            versions["version_id"].append(vid)
            versions["effective_from"].append(version.effective_from)
            for weekday, open_min, close_min in version.spans():
                sched["instance_id"].append(item.instance_id)
                sched["version_id"].append(vid)
                sched["effective_from"].append(version.effective_from)
                sched["weekday"].append(weekday)
                sched["open_min"].append(open_min)
                sched["close_min"].append(close_min)
        for day in sorted(set(cfg.business_hours.holidays)):
            hol["instance_id"].append(item.instance_id)
            hol["day"].append(day)
        policies: list[tuple[str, Any]] = [("*", cfg.sla_policy)]
        policies += [(team, cfg.sla_policy.for_team(team)) for team in cfg.sla_policy.teams]
        for team, policy in policies:
            for target in CLOCKS:
                spec: Target | None = getattr(policy, target)
                if spec is None:
                    continue
                sla["instance_id"].append(item.instance_id)
                sla["team_id"].append(team)
                sla["target"].append(target)
                sla["basis"].append(spec.basis)
                sla["seconds"].append(float(spec.minutes) * 60.0)
    return {
        "instances": pa.table(
            inst,
            schema=pa.schema(
                [
                    ("instance_id", pa.string()),
                    ("timezone", pa.string()),
                    ("include_groups", pa.bool_()),
                    ("at_risk_ratio", pa.float64()),
                ]
            ),
        ),
        "versions": pa.table(
            versions,
            schema=pa.schema(
                [("instance_id", pa.string()), ("version_id", pa.int32()), ("effective_from", pa.date32())]
            ),
        ),
        "schedule": pa.table(
            sched,
            schema=pa.schema(
                [
                    ("instance_id", pa.string()),
                    ("version_id", pa.int32()),
                    ("effective_from", pa.date32()),
                    ("weekday", pa.int32()),
                    ("open_min", pa.int32()),
                    ("close_min", pa.int32()),
                ]
            ),
        ),
        "holidays": pa.table(hol, schema=pa.schema([("instance_id", pa.string()), ("day", pa.date32())])),
        "sla": pa.table(
            sla,
            schema=pa.schema(
                [
                    ("instance_id", pa.string()),
                    ("team_id", pa.string()),
                    ("target", pa.string()),
                    ("basis", pa.string()),
                    ("seconds", pa.float64()),
                ]
            ),
        ),
    }
