"""Scrub Evolution API keys that earlier versions stored in bronze (``beazap scrub-apikeys``).

The receiver now replaces every ``apikey`` value of a body with a keyed hash before the write
(:mod:`bronze.redact`). Rows written before that still hold the keys in clear; this rewrites them
with the erasure machinery, so the same guarantees hold — current version *and* history:

1. the affected rows of ``bronze/webhook_events`` and ``bronze/quarantine`` are rewritten with a
   ``MERGE`` on their key (the change feed records updates, so tailing consumers see nothing new;
   ``payload_hash`` follows the new payload) — :func:`governance.lake_scrub.scrub_table`;
2. the consumers catch up, a checkpoint is written, and every older file that still holds a key
   in clear (data and change-data files only old versions reference, superseded checkpoints) is
   deleted — :func:`governance.erasure.purge_old_copies`;
3. every file of the tables is scanned again: :attr:`ApikeyScrubReport.remaining` lists what still
   holds a key (empty when clean).

:class:`ApikeyScrubber` is the erasure ``Scrubber``'s interface with a different rule: a value
"matches" when it holds an ``"apikey": "…"`` string that is not a keyed hash yet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from sqlalchemy import Engine

from bronze.redact import has_plain_apikey, redact_apikeys
from bronze.schema import QUARANTINE, WEBHOOK_EVENTS
from core.logging import get_logger
from governance import erasure, lake_files, lake_scrub
from storage.lake import Lake

log = get_logger(__name__)

TABLES = (WEBHOOK_EVENTS, QUARANTINE)


class _Needles:
    needles: ClassVar[list[str]] = ['"apikey"']  # substring pre-filter; ApikeyScrubber.matches decides


class ApikeyScrubber:
    """Duck-typed :class:`governance.subject.Scrubber` that replaces clear API keys by keyed hashes."""

    subject = _Needles()
    instances: frozenset[str] | None = None
    lid_hashes: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.value_map: dict[str, str] = {}

    def in_scope(self, _row: dict[str, Any]) -> bool:
        return True

    def matches(self, value: str | None) -> bool:
        return has_plain_apikey(value)

    def document(self, value: Any, erase_text: bool = True) -> Any:
        return value

    def json_text(self, raw: str | None, erase_text: bool = True) -> str | None:
        return None if raw is None else redact_apikeys(raw)

    def text(self, value: str | None, column: str = "") -> str | None:
        return None if value is None else redact_apikeys(value)


@dataclass
class ApikeyScrubReport:
    """Rows rewritten per table, old files purged, and files still holding a key (empty = clean)."""

    dry_run: bool
    rows: dict[str, int] = field(default_factory=dict)
    purged_files: int = 0
    remaining: list[dict[str, Any]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.remaining

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "clean": self.clean}


def find_remaining(lake: Lake) -> list[dict[str, Any]]:
    """Every file of the bronze tables that still holds an API key in clear."""
    scrubber = ApikeyScrubber()
    return [
        {"table": table, "path": hit.path, "kind": hit.kind, "referenced": hit.referenced}
        for table in TABLES
        for hit in lake_files.scan_table_files(lake, table, scrubber)  # type: ignore[arg-type]
    ]


def scrub_apikeys(lake: Lake, engine: Engine | None = None, *, dry_run: bool = False) -> ApikeyScrubReport:
    """Replace clear API keys in bronze, current version and history (see module docstring).

    With ``engine``, the live projector and silver catch up first (as for an erasure), so no
    consumer is left behind the purged versions.
    """
    scrubber = ApikeyScrubber()
    report = ApikeyScrubReport(dry_run=dry_run)
    tables = [t for t in TABLES if lake.exists(t)]
    if dry_run:
        for table in tables:
            hits = lake_scrub.find_affected(lake, table, scrubber)  # type: ignore[arg-type]
            _rows, changed = lake_scrub.scrub_rows(hits.to_pylist(), hits.schema, scrubber)  # type: ignore[arg-type]
            if changed:
                report.rows[table] = changed
        report.remaining = find_remaining(lake)
        return report
    for table in tables:
        result = lake_scrub.scrub_table(lake, table, scrubber)  # type: ignore[arg-type]
        if result.rows:
            report.rows[table] = result.rows
    if engine is not None:
        erasure.catch_up_consumers(lake, engine)
    report.purged_files = erasure.purge_old_copies(lake, scrubber, tables)  # type: ignore[arg-type]
    report.remaining = find_remaining(lake)
    log.info(
        "apikey_scrub.completed", rows=sum(report.rows.values()), purged_files=report.purged_files, clean=report.clean
    )
    return report
