"""Per-instance gold configuration: time zone, business hours and SLA policy.

Both JSON documents live in the ops store (``instances.business_hours`` and ``instances.sla_policy``)
and are validated here with pydantic; missing or ``null`` values mean the defaults below.

``business_hours`` (effective-dated weekly schedule + holidays, in the instance's time zone)::

    {
      "versions": [
        {"effective_from": "2024-01-01",
         "weekly": {"mon": [["08:00", "18:00"]], "tue": [["08:00", "12:00"], ["13:00", "18:00"]],
                    "sat": [["09:00", "13:00"]]}}
      ],
      "holidays": ["2026-01-01", "2026-12-25"]
    }

A single schedule may be given without ``versions``: ``{"weekly": {...}, "holidays": [...]}``.
Days missing from ``weekly`` are closed; ``"24:00"`` closes at midnight. An interval (a clock) is
measured with the version in force on the local day it **started**, so editing today's schedule
does not rewrite last year. Default: Mon–Fri 08:00–18:00, no holidays.

``sla_policy`` (targets in minutes; ``basis`` is ``business`` or ``calendar``; team overrides)::

    {
      "first_response": {"minutes": 15, "basis": "business"},
      "next_reply": {"minutes": 60, "basis": "business"},
      "resolution": {"minutes": 1440, "basis": "calendar"},
      "at_risk_ratio": 0.8,
      "include_groups": false,
      "teams": {"support": {"first_response": {"minutes": 5, "basis": "calendar"}}}
    }

A target set to ``null`` is not measured. Default: FRT 15 min and next reply 60 min in business
hours, resolution 24 h calendar.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa
from pydantic import BaseModel, Field, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # ISO 1..7
TARGETS = ("first_response", "next_reply", "resolution")
DEFAULT_TIMEZONE = "America/Sao_Paulo"
EPOCH = date(1970, 1, 1)


def _minutes(value: str) -> int:
    if value == "24:00":
        return 24 * 60
    parsed = time.fromisoformat(value)
    return parsed.hour * 60 + parsed.minute


class ScheduleVersion(BaseModel):
    """One weekly schedule, in force from ``effective_from`` (local date) until the next version."""

    effective_from: date = EPOCH
    weekly: dict[str, list[tuple[str, str]]] = Field(
        default_factory=lambda: {d: [("08:00", "18:00")] for d in WEEKDAYS[:5]}
    )

    @field_validator("weekly")
    @classmethod
    def _check_weekly(cls, weekly: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
        for day, spans in weekly.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use one of {', '.join(WEEKDAYS)}")
            previous_end = -1
            for start, end in sorted(spans, key=lambda s: _minutes(s[0])):
                a, b = _minutes(start), _minutes(end)
                if a >= b:
                    raise ValueError(f"{day}: opening {start} must be before closing {end}")
                if a < previous_end:
                    raise ValueError(f"{day}: intervals overlap")
                previous_end = b
        return weekly

    def spans(self) -> Iterable[tuple[int, int, int]]:
        """(iso weekday, open minute, close minute) for every open span."""
        for day, spans in self.weekly.items():
            for start, end in spans:
                yield WEEKDAYS.index(day) + 1, _minutes(start), _minutes(end)


class BusinessHours(BaseModel):
    versions: list[ScheduleVersion] = Field(default_factory=lambda: [ScheduleVersion()])
    holidays: list[date] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _single_schedule(cls, data: Any) -> Any:
        if isinstance(data, dict) and "weekly" in data and "versions" not in data:
            data = dict(data)
            data["versions"] = [{"weekly": data.pop("weekly"), "effective_from": data.pop("effective_from", EPOCH)}]
        return data

    @field_validator("versions")
    @classmethod
    def _sorted(cls, versions: list[ScheduleVersion]) -> list[ScheduleVersion]:
        if not versions:
            raise ValueError("at least one schedule version is required")
        ordered = sorted(versions, key=lambda v: v.effective_from)
        if len({v.effective_from for v in ordered}) != len(ordered):
            raise ValueError("two schedule versions share an effective_from date")
        # The earliest version also covers everything before it.
        ordered[0] = ordered[0].model_copy(update={"effective_from": EPOCH})
        return ordered


class Target(BaseModel):
    minutes: float = Field(gt=0)
    basis: Literal["business", "calendar"] = "business"


class TeamPolicy(BaseModel):
    first_response: Target | None = None
    next_reply: Target | None = None
    resolution: Target | None = None


class SlaPolicy(BaseModel):
    first_response: Target | None = Target(minutes=15, basis="business")
    next_reply: Target | None = Target(minutes=60, basis="business")
    resolution: Target | None = Target(minutes=1440, basis="calendar")
    at_risk_ratio: float = Field(default=0.8, gt=0, le=1)
    include_groups: bool = False
    teams: dict[str, TeamPolicy] = Field(default_factory=dict)


@dataclass(frozen=True)
class InstanceConfig:
    instance_id: str
    timezone: str = DEFAULT_TIMEZONE
    business_hours: BusinessHours = field(default_factory=BusinessHours)
    sla: SlaPolicy = field(default_factory=SlaPolicy)

    @classmethod
    def parse(
        cls, instance_id: str, timezone: str | None, business_hours: Any = None, sla_policy: Any = None
    ) -> InstanceConfig:
        tz = timezone or DEFAULT_TIMEZONE
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"instance {instance_id}: unknown time zone {tz!r}") from exc
        return cls(
            instance_id=instance_id,
            timezone=tz,
            business_hours=BusinessHours.model_validate(business_hours or {}),
            sla=SlaPolicy.model_validate(sla_policy or {}),
        )


def load_configs(engine: Any | None, instance_ids: Iterable[str], default_timezone: str) -> list[InstanceConfig]:
    """Configs for ``instance_ids`` (from the ops store when ``engine`` is given, defaults otherwise)."""
    stored: dict[str, InstanceConfig] = {}
    if engine is not None:
        from sqlalchemy import select

        from storage.tables import instances

        with engine.connect() as conn:
            rows = conn.execute(
                select(instances.c.id, instances.c.timezone, instances.c.business_hours, instances.c.sla_policy)
            ).all()
        for row in rows:
            stored[row.id] = InstanceConfig.parse(row.id, row.timezone, row.business_hours, row.sla_policy)
    ids = sorted(set(instance_ids) | set(stored))
    return [stored.get(i) or InstanceConfig.parse(i, default_timezone) for i in ids]


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


def config_tables(configs: list[InstanceConfig]) -> dict[str, pa.Table]:
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
    for cfg in configs:
        inst["instance_id"].append(cfg.instance_id)
        inst["timezone"].append(cfg.timezone)
        inst["include_groups"].append(cfg.sla.include_groups)
        inst["at_risk_ratio"].append(cfg.sla.at_risk_ratio)
        for vid, version in enumerate(cfg.business_hours.versions):
            versions["instance_id"].append(cfg.instance_id)
            versions["version_id"].append(vid)
            versions["effective_from"].append(version.effective_from)
            for weekday, open_min, close_min in version.spans():
                sched["instance_id"].append(cfg.instance_id)
                sched["version_id"].append(vid)
                sched["effective_from"].append(version.effective_from)
                sched["weekday"].append(weekday)
                sched["open_min"].append(open_min)
                sched["close_min"].append(close_min)
        for day in sorted(set(cfg.business_hours.holidays)):
            hol["instance_id"].append(cfg.instance_id)
            hol["day"].append(day)
        policies: list[tuple[str, Any]] = [("*", cfg.sla)]
        policies += [(team, _merge(cfg.sla, override)) for team, override in cfg.sla.teams.items()]
        for team, policy in policies:
            for target in TARGETS:
                spec: Target | None = getattr(policy, target)
                if spec is None:
                    continue
                sla["instance_id"].append(cfg.instance_id)
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


def _merge(base: SlaPolicy, override: TeamPolicy) -> SlaPolicy:
    updates = {t: getattr(override, t) for t in TARGETS if getattr(override, t) is not None}
    return base.model_copy(update=updates)
