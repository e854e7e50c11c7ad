"""Live SLA clocks of open conversations (``docs/metrics.md`` → SLA).

Targets come from the instance's ``sla_policy`` JSON (``first_response_minutes``,
``next_reply_minutes``, ``resolution_minutes``, ``at_risk_ratio``), falling back to the
``BEAZAP_SLA_*`` settings. Live deadlines are calendar time; business-hours values are computed by
gold (``sla_conversations``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.settings import Settings


@dataclass(frozen=True)
class SlaPolicy:
    first_response: timedelta
    next_reply: timedelta
    resolution: timedelta
    at_risk_ratio: float

    @classmethod
    def of(cls, policy: dict[str, Any] | None, settings: Settings) -> SlaPolicy:
        p = policy or {}

        def minutes(key: str, default: float) -> timedelta:
            value = p.get(key)
            return timedelta(minutes=float(value if isinstance(value, int | float) else default))

        ratio = p.get("at_risk_ratio")
        return cls(
            first_response=minutes("first_response_minutes", settings.sla_first_response_minutes),
            next_reply=minutes("next_reply_minutes", settings.sla_next_reply_minutes),
            resolution=minutes("resolution_minutes", settings.sla_resolution_minutes),
            at_risk_ratio=float(ratio) if isinstance(ratio, int | float) else settings.sla_at_risk_ratio,
        )

    def frt_cutoffs(self, now: datetime) -> tuple[datetime, datetime]:
        """(opened_at before which the FRT clock is at risk, … before which it is breached)."""
        return now - self.first_response * self.at_risk_ratio, now - self.first_response


def clocks(conv: dict[str, Any], policy: SlaPolicy, now: datetime) -> dict[str, Any]:
    """Every running clock of ``conv`` with its deadline and state, plus ``next_breach_at``."""
    out: dict[str, Any] = {}
    if conv["status"] != "open":
        return {"clocks": out, "next_breach_at": None, "state": "closed"}
    running: list[tuple[str, datetime, timedelta]] = []
    if conv["origin"] == "inbound" and conv["first_response_at"] is None:
        running.append(("first_response", conv["opened_at"], policy.first_response))
    elif conv["awaiting_since"] is not None:
        running.append(("next_reply", conv["awaiting_since"], policy.next_reply))
    if conv["origin"] == "inbound":
        running.append(("resolution", conv["opened_at"], policy.resolution))
    worst = "ok"
    deadlines = []
    for name, started, target in running:
        due = started + target
        elapsed = now - started
        state = "breached" if now > due else "at_risk" if elapsed >= target * policy.at_risk_ratio else "ok"
        out[name] = {"started_at": started, "due_at": due, "state": state}
        if state == "breached":
            worst = "breached"
        elif state == "at_risk" and worst == "ok":
            worst = "at_risk"
        if now <= due:
            deadlines.append(due)
    return {"clocks": out, "next_breach_at": min(deadlines) if deadlines else None, "state": worst}
