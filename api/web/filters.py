"""The dashboard's filters, kept in the URL so a view can be shared: period and instance/team/attendant.

``period`` is ``today``, ``7d``, ``30d``, ``month`` or ``custom`` (with ``from``/``to``); given dates
without a period mean ``custom``. Days are UTC calendar days, as the metrics API's default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

PERIODS = ("today", "7d", "30d", "month", "custom")
DEFAULT_PERIOD = "7d"


@dataclass
class ViewFilters:
    period: str
    start: date
    end: date
    instance_ids: list[str] = field(default_factory=list)
    team_ids: list[str] = field(default_factory=list)
    attendant_ids: list[str] = field(default_factory=list)
    invalid: str | None = None  # a bad date given in the URL (shown, then the default period is used)

    def api_params(self) -> dict[str, Any]:
        """The metrics API's query parameters for these filters."""
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "instance_id": self.instance_ids,
            "team_id": self.team_ids,
            "attendant_id": self.attendant_ids,
        }

    def query(self, **override: Any) -> str:
        """This view's URL query string, with some parameters replaced (``None`` drops one)."""
        params: dict[str, Any] = {"period": self.period}
        if self.period == "custom":
            params |= {"from": self.start.isoformat(), "to": self.end.isoformat()}
        params |= {"instance_id": self.instance_ids, "team_id": self.team_ids, "attendant_id": self.attendant_ids}
        params |= override
        pairs: list[tuple[str, str]] = []
        for key, value in params.items():
            for v in value if isinstance(value, list) else [value]:
                if v is not None and v != "":
                    pairs.append((key, str(v)))
        return urlencode(pairs)


def _date(text: str | None) -> date | None:
    if not text:
        return None
    return date.fromisoformat(text)


def period_range(period: str, today: date) -> tuple[date, date]:
    if period == "today":
        return today, today
    if period == "30d":
        return today - timedelta(days=29), today
    if period == "month":
        return today.replace(day=1), today
    return today - timedelta(days=6), today


def from_query(query: QueryParams, today: date | None = None) -> ViewFilters:
    today = today or datetime.now(UTC).date()
    period = query.get("period") or ("custom" if query.get("from") or query.get("to") else DEFAULT_PERIOD)
    if period not in PERIODS:
        period = DEFAULT_PERIOD
    invalid = None
    start, end = period_range(period, today)
    if period == "custom":
        try:
            given_start, given_end = _date(query.get("from")), _date(query.get("to"))
            end = given_end or today
            start = given_start or end - timedelta(days=6)
        except ValueError:
            invalid = "bad_date"
            period = DEFAULT_PERIOD
            start, end = period_range(period, today)

    def many(name: str) -> list[str]:
        return sorted({v for v in query.getlist(name) if v})

    return ViewFilters(period, start, end, many("instance_id"), many("team_id"), many("attendant_id"), invalid)
