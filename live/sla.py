"""Live SLA clocks of open conversations (``docs/metrics.md`` → SLA), on the policy's basis.

Targets, their basis (``business`` or ``calendar``) and the at-risk share come from the instance's
configuration (:mod:`core.instance_config`, defaults from the ``BEAZAP_SLA_*`` settings). A
business-basis clock only runs while the instance is open (its weekly schedule and holidays, in its
time zone): a conversation that arrives on Saturday is not at risk on Sunday. The live store uses the
schedule version in force on each day; gold measures a clock with the version of the day it started
— the two differ only for a clock that spans a schedule change. Team overrides are applied by gold
only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from core.instance_config import CLOCKS, BusinessCalendar, InstanceConfig, Target
from storage import ops_repo
from storage.instances import load_configs
from storage.tokens import TenantScope


@dataclass(frozen=True)
class SlaPolicy:
    """An instance's live SLA rules: targets per clock on their basis."""

    config: InstanceConfig
    calendar: BusinessCalendar
    targets: dict[str, Target | None]
    at_risk_ratio: float

    @classmethod
    def of(cls, config: InstanceConfig | None) -> SlaPolicy:
        config = config or InstanceConfig()
        targets = {clock: getattr(config.sla_policy, clock) for clock in CLOCKS}
        return cls(config, config.calendar, targets, config.sla_policy.at_risk_ratio)

    def target(self, clock: str) -> Target | None:
        return self.targets[clock]

    def elapsed(self, target: Target, started: datetime, now: datetime) -> float:
        """Seconds the clock has run, on the target's basis."""
        if target.basis == "business":
            return self.calendar.seconds(started, now)
        return max(0.0, (now - started).total_seconds())

    def due_at(self, target: Target, started: datetime) -> datetime | None:
        seconds = target.minutes * 60.0
        if target.basis == "business":
            return self.calendar.deadline(started, seconds)
        return started + timedelta(seconds=seconds)

    def opened_before(self, target: Target, now: datetime, share: float) -> datetime | None:
        """The latest start whose clock has run ``share`` of the target by ``now`` (None: none has)."""
        seconds = target.minutes * 60.0 * share
        if target.basis == "business":
            return self.calendar.start(now, seconds)
        return now - timedelta(seconds=seconds)

    def frt_cutoffs(self, now: datetime) -> tuple[datetime, datetime] | None:
        """(opened_at before which the FRT clock is at risk, … before which it is breached); None when
        first response is not measured or the schedule never opened."""
        target = self.target("first_response")
        if target is None:
            return None
        at_risk, breached = self.opened_before(target, now, self.at_risk_ratio), self.opened_before(target, now, 1.0)
        if at_risk is None:
            return None
        return at_risk, breached or datetime.min.replace(tzinfo=now.tzinfo)


def policies(engine: Engine, instance_ids: list[str]) -> dict[str, SlaPolicy]:
    """Live SLA rules of instances the caller may read (scope already checked)."""
    configs = load_configs(engine, instance_ids)
    return {i: SlaPolicy.of(configs.get(i)) for i in instance_ids}


def clocks(conv: dict[str, Any], policy: SlaPolicy, now: datetime) -> dict[str, Any]:
    """Every running clock of ``conv`` with its deadline and state, plus ``next_breach_at``."""
    out: dict[str, Any] = {}
    if conv["status"] != "open":
        return {"clocks": out, "next_breach_at": None, "state": "closed"}
    running: list[tuple[str, datetime]] = []
    if conv["origin"] == "inbound" and conv["first_response_at"] is None:
        running.append(("first_response", conv["opened_at"]))
    elif conv["awaiting_since"] is not None:
        running.append(("next_reply", conv["awaiting_since"]))
    if conv["origin"] == "inbound":
        running.append(("resolution", conv["opened_at"]))
    worst = "ok"
    deadlines = []
    for name, started in running:
        target = policy.target(name)
        if target is None:
            continue
        due = policy.due_at(target, started)
        if due is not None and now > due:
            state = "breached"  # (elapsed not needed: its cost grows with the wait)
        elif policy.elapsed(target, started, now) >= target.minutes * 60.0 * policy.at_risk_ratio:
            state = "at_risk"
        else:
            state = "ok"
        out[name] = {"started_at": started, "due_at": due, "state": state, "basis": target.basis}
        if state == "breached":
            worst = "breached"
        elif state == "at_risk" and worst == "ok":
            worst = "at_risk"
        if due is not None and now <= due:
            deadlines.append(due)
    return {"clocks": out, "next_breach_at": min(deadlines) if deadlines else None, "state": worst}


def first_response_list(
    engine: Engine,
    scope: TenantScope,
    instance_ids: list[str],
    kind: str,
    now: datetime,
    *,
    limit: int = 100,
    rules: dict[str, SlaPolicy] | None = None,
) -> list[dict[str, Any]]:
    """Open conversations waiting for a first response, oldest first: all (``queue``), those past the
    at-risk share but within target (``at_risk``) or past target (``breached``) — each on the
    policy's basis — with their clocks in ``sla``."""
    rules = rules or policies(engine, instance_ids)
    before: dict[str, datetime] | None = None
    since: dict[str, datetime] | None = None
    ids = list(instance_ids)
    if kind in ("at_risk", "breached"):
        cuts = {i: rules[i].frt_cutoffs(now) for i in ids}
        ids = [i for i in ids if cuts[i] is not None]
        if not ids:
            return []
        if kind == "at_risk":
            before = {i: cuts[i][0] for i in ids}  # type: ignore[index]
            since = {i: cuts[i][1] for i in ids}  # type: ignore[index]
        else:
            before = {i: cuts[i][1] for i in ids}  # type: ignore[index]
    rows = ops_repo.no_first_response_queue(engine, scope, ids, opened_before=before, opened_since=since, limit=limit)
    for row in rows:
        row["sla"] = clocks(row, rules[row["instance_id"]], now)
    return rows
