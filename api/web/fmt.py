"""Numbers, percentages, dates and durations as a person reads them, per locale (pt-BR or en).

The one place where figures become text: ``1.234`` and ``12,5%`` in Portuguese, ``1,234`` and
``12.5%`` in English; dates ``07/12/2026`` (pt-BR) or ``12/07/2026`` (en); durations ``3 min 20 s``.
Missing values print as an em dash.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

DASH = "—"


def _swap(text: str, locale: str) -> str:
    """English separators → Portuguese ones (``1,234.5`` → ``1.234,5``)."""
    if locale == "en":
        return text
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def number(value: Any, locale: str, digits: int = 0) -> str:
    if value is None:
        return DASH
    return _swap(f"{float(value):,.{digits}f}", locale)


def pct(value: Any, locale: str, digits: int = 1) -> str:
    return DASH if value is None else f"{number(value, locale, digits)}%"


def change(value: Any, locale: str) -> str:
    """A period-over-period change, signed (``+12,5%``)."""
    if value is None:
        return DASH
    sign = "+" if value > 0 else ""
    return f"{sign}{number(value, locale, 1)}%"


def day(value: Any, locale: str) -> str:
    if value is None or value == "":
        return DASH
    d = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    return d.strftime("%m/%d/%Y") if locale == "en" else d.strftime("%d/%m/%Y")


def moment(value: Any, locale: str) -> str:
    """A timestamp (ISO string or datetime) as date and time, UTC."""
    if value is None or value == "":
        return DASH
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return f"{day(ts.date(), locale)} {ts.strftime('%H:%M')}"


def duration(seconds: Any, locale: str) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 05 min``, ``3 d 4 h`` (same units in both languages)."""
    if seconds is None:
        return DASH
    total = round(float(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
