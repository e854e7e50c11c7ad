"""One rule for datetimes read back from stores: every instant is UTC.

SQLite (and some drivers) return naive datetimes for columns written as UTC; :func:`as_utc` makes
such a value aware (UTC) and converts an aware one to UTC, so comparisons and arithmetic never mix
naive and aware values. Anything that is not a ``datetime`` passes through unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: T) -> T: ...
def as_utc(value: Any) -> Any:
    """``value`` as an aware UTC datetime (naive values are taken as UTC); non-datetimes unchanged."""
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utc_row(row: Any) -> dict[str, Any]:
    """A SQLAlchemy result row as a dict whose datetimes are aware UTC."""
    return {k: as_utc(v) for k, v in row._mapping.items()}
