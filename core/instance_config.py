"""The one instance configuration model: time zone, business hours and SLA policy.

Every reader (gold, the live store's SLA lists and routing, insights, the quality checks, the
operational API and the CLI) goes through :class:`InstanceConfig`; defaults come only from
:mod:`core.settings` (``BEAZAP_DEFAULT_TIMEZONE``, ``BEAZAP_DEFAULT_BUSINESS_HOURS``,
``BEAZAP_SLA_*``). It is stored in three columns of ``instances``: ``timezone`` (IANA name),
``business_hours`` and ``sla_policy`` (JSON, only what was set — unset parts follow the settings)::

    business_hours = {"versions": [{"effective_from": "1970-01-01",
                                    "weekly": {"mon": [["08:00", "18:00"]], "sat": [["08:00", "12:00"]]}}],
                      "holidays": ["2026-12-25"]}
    sla_policy = {"first_response": {"minutes": 30, "basis": "business"},
                  "resolution": {"minutes": 1440, "basis": "calendar"}, "at_risk_ratio": 0.8,
                  "teams": {"vip": {"first_response": {"minutes": 5, "basis": "calendar"}}}}

Writes are validated (:func:`validate`: a bad zone or interval raises ``ValueError``, the API answers
422 and the CLI exits 1); reads never fail (:func:`load`: a bad stored part logs a warning and falls
back to the defaults, for that instance only). :func:`merge_patch` is the ``PATCH`` rule: objects
merge key by key, anything else (lists, scalars, ``null``) replaces. The live store's business-time
arithmetic (:meth:`InstanceConfig.business_seconds` …) lives here too, next to the schedule it reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from core.logging import get_logger
from core.settings import check_zone, get_settings

log = get_logger(__name__)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # ISO 1..7
CLOCKS = ("first_response", "next_reply", "resolution")
EPOCH = date(1970, 1, 1)
Basis = Literal["business", "calendar"]
_HHMM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")
_DAYS = r"[a-z]+(?:\s*-\s*[a-z]+)?"
_HOURS_SPEC = re.compile(rf"^\s*(?P<days>{_DAYS}(?:\s*,\s*{_DAYS})*)\s+(?P<spans>.+)$")
_SLA_SPEC = re.compile(
    r"^\s*(?P<clock>\w+)\s*=\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>[mhd]?)\s*(?::\s*(?P<basis>\w+))?\s*$"
)


class ConfigError(ValueError):
    """An invalid instance configuration (the API answers 422, the CLI exits 1)."""


def minute_of_day(value: str) -> int:
    """``"HH:MM"`` (``"24:00"`` = midnight at the end of the day) → minutes since midnight."""
    if not _HHMM.match(value):
        raise ValueError(f"{value!r} is not a time of day HH:MM (00:00–24:00)")
    if value == "24:00":
        return 24 * 60
    parsed = time.fromisoformat(value)
    return parsed.hour * 60 + parsed.minute


def parse_hours(specs: list[str]) -> dict[str, list[tuple[str, str]]]:
    """``["mon-fri 08:00-18:00", "sat 08:00-12:00", "sun closed"]`` → a weekly schedule (validated later).

    Days are ranges (``mon-fri``) or lists (``mon,wed``); spans are ``HH:MM-HH:MM`` separated by commas
    or spaces; ``closed`` leaves the days without hours. A day named twice is a ``ValueError``.
    """
    weekly: dict[str, list[tuple[str, str]]] = {}
    for spec in specs:
        match = _HOURS_SPEC.match(spec.strip().lower())
        if not match:
            raise ConfigError(f"hours {spec!r}: expected e.g. 'mon-fri 08:00-18:00' or 'sat 08:00-12:00,13:00-17:00'")
        days: list[str] = []
        for part in match["days"].split(","):
            first, _, last = (p.strip() for p in part.partition("-"))
            for day in (first, last or first):
                if day not in WEEKDAYS:
                    raise ConfigError(f"hours {spec!r}: unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
            a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
            if b < a:
                raise ConfigError(f"hours {spec!r}: {first}-{last} runs backwards")
            days += WEEKDAYS[a : b + 1]
        spans: list[tuple[str, str]] = []
        if match["spans"].strip() != "closed":
            for span in re.split(r"[,\s]+", match["spans"].strip()):
                start, sep, end = span.partition("-")
                if not sep:
                    raise ConfigError(f"hours {spec!r}: span {span!r} is not HH:MM-HH:MM")
                spans.append((start, end))
        for day in days:
            if day in weekly:
                raise ConfigError(f"hours: {day} is given twice")
            weekly[day] = list(spans)
    try:
        ScheduleVersion(weekly=weekly)  # validate now, with the spec in the message
    except ValidationError as exc:
        raise ConfigError(f"hours {', '.join(specs)!r}: {_describe(exc)}") from None
    return weekly


def parse_sla(spec: str) -> tuple[str, dict[str, Any]]:
    """``"first_response=30m:business"`` → ``("first_response", {"minutes": 30, "basis": "business"})``.

    Units: ``m`` (default), ``h``, ``d``; the basis may be omitted (the policy's current basis stays).
    """
    match = _SLA_SPEC.match(spec)
    if not match:
        raise ConfigError(f"sla {spec!r}: expected CLOCK=AMOUNT[m|h|d][:business|calendar], e.g. first_response=30m")
    clock = match["clock"]
    if clock not in CLOCKS:
        raise ConfigError(f"sla {spec!r}: unknown clock {clock!r}; use {', '.join(CLOCKS)}")
    minutes = float(match["amount"]) * {"": 1, "m": 1, "h": 60, "d": 1440}[match["unit"]]
    target: dict[str, Any] = {"minutes": minutes}
    if match["basis"]:
        target["basis"] = match["basis"]
    try:
        Target.model_validate({"basis": "business", **target})
    except ValidationError as exc:
        raise ConfigError(f"sla {spec!r}: {_describe(exc)}") from None
    return clock, target


def _default_weekly() -> dict[str, list[tuple[str, str]]]:
    return parse_hours(get_settings().default_business_hours)


class ScheduleVersion(BaseModel):
    """One weekly schedule, in force from ``effective_from`` (local date) until the next version."""

    model_config = ConfigDict(extra="forbid")

    effective_from: date = EPOCH
    weekly: dict[str, list[tuple[str, str]]] = Field(default_factory=_default_weekly)

    @field_validator("weekly")
    @classmethod
    def _check_weekly(cls, weekly: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
        for day, spans in weekly.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use one of {', '.join(WEEKDAYS)}")
            previous_end = -1
            for start, end in sorted(spans, key=lambda s: minute_of_day(s[0])):
                a, b = minute_of_day(start), minute_of_day(end)
                if a >= b:
                    raise ValueError(f"{day}: opening {start} must be before closing {end}")
                if a < previous_end:
                    raise ValueError(f"{day}: intervals overlap at {start}")
                previous_end = b
        return weekly

    def spans(self) -> Iterator[tuple[int, int, int]]:
        """(iso weekday, open minute, close minute) for every open span."""
        for day, spans in self.weekly.items():
            for start, end in spans:
                yield WEEKDAYS.index(day) + 1, minute_of_day(start), minute_of_day(end)


class BusinessHours(BaseModel):
    """Effective-dated weekly schedules and holidays, in the instance's time zone."""

    model_config = ConfigDict(extra="forbid")

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

    @field_validator("holidays")
    @classmethod
    def _unique(cls, holidays: list[date]) -> list[date]:
        return sorted(set(holidays))

    def version_on(self, day: date) -> ScheduleVersion:
        current = self.versions[0]
        for version in self.versions:
            if version.effective_from <= day:
                current = version
        return current


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes: float = Field(gt=0)
    basis: Basis = "business"


def _default_target(clock: str) -> Target:
    s = get_settings()
    return Target(minutes=getattr(s, f"sla_{clock}_minutes"), basis=getattr(s, f"sla_{clock}_basis"))


class TeamPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_response: Target | None = None
    next_reply: Target | None = None
    resolution: Target | None = None


class SlaPolicy(BaseModel):
    """Targets per clock (``null`` = not measured), the at-risk share and team overrides."""

    model_config = ConfigDict(extra="forbid")

    first_response: Target | None = Field(default_factory=lambda: _default_target("first_response"))
    next_reply: Target | None = Field(default_factory=lambda: _default_target("next_reply"))
    resolution: Target | None = Field(default_factory=lambda: _default_target("resolution"))
    at_risk_ratio: float = Field(default_factory=lambda: get_settings().sla_at_risk_ratio, gt=0, le=1)
    include_groups: bool = False
    teams: dict[str, TeamPolicy] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _partial_targets(cls, data: Any) -> Any:
        """A target given without ``minutes`` or ``basis`` takes the missing half from the default."""
        if isinstance(data, dict):
            data = dict(data)
            for clock in CLOCKS:
                value = data.get(clock)
                if isinstance(value, dict) and not {"minutes", "basis"} <= set(value):
                    data[clock] = {**_default_target(clock).model_dump(), **value}
        return data

    def for_team(self, team_id: str) -> SlaPolicy:
        override = self.teams.get(team_id)
        if override is None:
            return self
        return self.model_copy(update={c: getattr(override, c) for c in CLOCKS if getattr(override, c) is not None})


class InstanceConfig(BaseModel):
    """An instance's whole configuration, defaults filled in from the settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = Field(default_factory=lambda: get_settings().default_timezone)
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    sla_policy: SlaPolicy = Field(default_factory=SlaPolicy)

    _calendar: BusinessCalendar | None = PrivateAttr(default=None)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> InstanceConfig:
        copy = super().model_copy(update=update, deep=deep)
        copy._calendar = None  # a copy with other hours must not reuse this calendar
        return copy

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("business_hours", "sla_policy", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # ZoneInfo caches instances by key

    # --- business time (the live store; gold computes the same in SQL, gold/business_calendar.sql) ---
    @property
    def calendar(self) -> BusinessCalendar:
        """This configuration's business calendar (built once per object)."""
        if self._calendar is None:
            self._calendar = BusinessCalendar(self)
        return self._calendar

    def open_spans(self, day: date) -> list[tuple[datetime, datetime]]:
        return self.calendar.open_spans(day)

    def is_open(self, at: datetime) -> bool:
        return self.calendar.is_open(at)

    def business_seconds(self, start: datetime, end: datetime) -> float:
        return self.calendar.seconds(start, end)

    def business_deadline(self, start: datetime, seconds: float, max_days: int = 400) -> datetime | None:
        return self.calendar.deadline(start, seconds, max_days)

    def business_start(self, end: datetime, seconds: float, max_days: int = 400) -> datetime | None:
        return self.calendar.start(end, seconds, max_days)


class BusinessCalendar:
    """Open spans of an instance's schedule as UTC instants, day by day (cached), and the arithmetic
    of business time over them: open seconds between two instants, the instant a number of open
    seconds after a start, and the latest start with a number of open seconds before an end."""

    def __init__(self, config: InstanceConfig) -> None:
        self.zone = config.zone
        self.holidays = frozenset(config.business_hours.holidays)
        self.versions = [
            (v.effective_from, {w: sorted((a, b) for ww, a, b in v.spans() if ww == w) for w in range(1, 8)})
            for v in config.business_hours.versions
        ]
        self._days: dict[date, list[tuple[datetime, datetime]]] = {}

    def open_spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open spans of one local day (none on holidays), with the version in force that day."""
        spans = self._days.get(day)
        if spans is None:
            spans = []
            if day not in self.holidays:
                weekly = self.versions[0][1]
                for since, version in self.versions:
                    if since <= day:
                        weekly = version
                midnight = datetime.combine(day, time.min)
                for a, b in weekly[day.isoweekday()]:
                    spans.append(
                        (
                            (midnight + timedelta(minutes=a)).replace(tzinfo=self.zone).astimezone(UTC),
                            (midnight + timedelta(minutes=b)).replace(tzinfo=self.zone).astimezone(UTC),
                        )
                    )
            self._days[day] = spans
        return spans

    def _local_day(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def is_open(self, at: datetime) -> bool:
        return any(start <= at < end for start, end in self.open_spans(self._local_day(at)))

    def seconds(self, start: datetime, end: datetime) -> float:
        """Open seconds between two instants (0 when ``end <= start``)."""
        if end <= start:
            return 0.0
        total = 0.0
        day, last = self._local_day(start), self._local_day(end)
        one = timedelta(days=1)
        while day <= last:
            for a, b in self.open_spans(day):
                lo, hi = max(a, start), min(b, end)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += one
        return total

    def deadline(self, start: datetime, seconds: float, max_days: int = 400) -> datetime | None:
        """The instant ``seconds`` of open time after ``start`` (None if the schedule never opens)."""
        left = seconds
        day = self._local_day(start)
        for _ in range(max_days):
            for a, b in self.open_spans(day):
                a = max(a, start)
                span = (b - a).total_seconds()
                if span <= 0:
                    continue
                if span >= left:
                    return a + timedelta(seconds=left)
                left -= span
            day += timedelta(days=1)
        return None

    def start(self, end: datetime, seconds: float, max_days: int = 400) -> datetime | None:
        """The latest instant with ``seconds`` of open time between it and ``end`` (None if never)."""
        left = seconds
        day = self._local_day(end)
        for _ in range(max_days):
            for a, b in reversed(self.open_spans(day)):
                b = min(b, end)
                span = (b - a).total_seconds()
                if span <= 0:
                    continue
                if span >= left:
                    return b - timedelta(seconds=left)
                left -= span
            day -= timedelta(days=1)
        return None


def _describe(exc: ValidationError) -> str:
    """Validation errors as ``where: what`` without echoing the input values."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors(include_input=False, include_url=False)
    )


def validate(timezone: Any = None, business_hours: Any = None, sla_policy: Any = None) -> InstanceConfig:
    """The configuration of a write, or :class:`ConfigError` with a readable message."""
    data: dict[str, Any] = {"business_hours": business_hours, "sla_policy": sla_policy}
    if timezone is not None:
        data["timezone"] = timezone
    try:
        return InstanceConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def stored(config: InstanceConfig) -> dict[str, Any]:
    """The stored shape of a validated configuration (only what was set; JSON-ready)."""
    return {
        "timezone": config.timezone,
        "business_hours": config.business_hours.model_dump(mode="json", exclude_unset=True) or None,
        "sla_policy": config.sla_policy.model_dump(mode="json", exclude_unset=True) or None,
    }


def load(instance_id: str, timezone: Any, business_hours: Any, sla_policy: Any) -> InstanceConfig:
    """The configuration of a stored row; a bad part is logged and replaced by its default."""
    parts: dict[str, Any] = {"timezone": timezone, "business_hours": business_hours, "sla_policy": sla_policy}
    good: dict[str, Any] = {}
    for name, value in parts.items():
        if value is None:
            continue
        try:
            InstanceConfig.model_validate({name: value})
        except ValidationError as exc:
            log.warning(
                "invalid stored instance configuration, using defaults",
                instance_id=instance_id,
                part=name,
                problem=_describe(exc),
            )
            continue
        good[name] = value
    return InstanceConfig.model_validate(good)


def merge_patch(current: Any, patch: Any) -> Any:
    """``PATCH`` semantics: objects merge key by key (recursively); anything else replaces."""
    if isinstance(current, Mapping) and isinstance(patch, Mapping):
        out = dict(current)
        for key, value in patch.items():
            out[key] = merge_patch(current.get(key), value)
        return out
    return patch


def upsert_schedule(business_hours: Any, weekly: dict[str, Any], effective_from: date | None = None) -> dict:
    """``business_hours`` with the weekly schedule in force from ``effective_from`` set (other versions kept;
    without a date the base schedule, in force since the beginning, is replaced)."""
    current = BusinessHours.model_validate(business_hours or {}).model_dump(mode="json", exclude_unset=True)
    versions = [v for v in current.get("versions") or [{"effective_from": EPOCH.isoformat()}]]
    when = (effective_from or EPOCH).isoformat()
    kept = [v for v in versions if str(v.get("effective_from", EPOCH.isoformat())) != when]
    if effective_from is None and versions:
        kept = [v for v in kept if str(v.get("effective_from", EPOCH.isoformat())) != EPOCH.isoformat()]
    return {**current, "versions": [*kept, {"effective_from": when, "weekly": weekly}]}


def _patch_business_hours(current: Any, patch: Any) -> Any:
    if isinstance(patch, Mapping) and "weekly" in patch and "versions" not in patch:
        when = patch.get("effective_from")
        out = upsert_schedule(current, patch["weekly"], date.fromisoformat(str(when)) if when else None)
        if "holidays" in patch:
            out["holidays"] = patch["holidays"]
        return out
    return merge_patch(current, patch)


def patched(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The stored configuration after a ``PATCH`` of ``timezone``/``business_hours``/``sla_policy``.

    ``null`` resets ``business_hours`` or ``sla_policy`` (or one target: not measured) to the default;
    a ``null`` time zone is an error. Raises :class:`ConfigError`."""
    if "timezone" in patch and patch["timezone"] is None:
        raise ConfigError("timezone: may not be null (send an IANA name like Region/City)")
    merged = {k: current.get(k) for k in ("timezone", "business_hours", "sla_policy")}
    try:
        if "timezone" in patch:
            merged["timezone"] = patch["timezone"]
        if "business_hours" in patch:
            bh = patch["business_hours"]
            merged["business_hours"] = None if bh is None else _patch_business_hours(merged["business_hours"], bh)
        if "sla_policy" in patch:
            sla = patch["sla_policy"]
            merged["sla_policy"] = None if sla is None else merge_patch(merged["sla_policy"] or {}, sla)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    return stored(validate(**merged))
