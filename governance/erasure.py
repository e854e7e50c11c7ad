"""LGPD erasure of one contact across bronze, silver, gold and the operational store, and its proof.

``erase_contact`` (``beazap erase --phone …``, ``POST /v1/admin/erasures``):

1. identifies the subject: the E.164 phone, its Brazilian 8/9-digit variants and every LID seen
   with it (silver contacts/messages, bronze payloads);
2. picks one random pseudonymous LID and rewrites every row that mentions the subject: identifiers
   become the pseudonym, free text (message text, captions, names, summaries) becomes
   ``[erased]``; conversation ids derived from the phone are re-derived from the pseudonym, so the
   layers stay consistent with a rebuild from bronze and **every count stays the same**;
3. removes old copies (a targeted vacuum): checkpoint, then delete every file that still holds an
   identifier and no current version needs (old data and change-data files, old checkpoints) and
   strip the column statistics that held the values from old JSON commits;
4. writes an audit record with a keyed hash of the phone (and of its LIDs), never the data itself.

``verify_erasure`` (``beazap erase --verify --phone …``) reads every file of every table — not just
the current version, the ``_delta_log`` included — and every ops-store row, and reports anything
that still matches; a tenant's verification (``POST /v1/admin/erasures/verify``) only reports what
belongs to its instances.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from bronze.schema import OPS_EVENTS, QUARANTINE, WEBHOOK_EVENTS
from core.logging import get_logger
from gold.serving import store as serving_store
from governance import lake_files, lake_scrub, store_scrub
from governance.subject import LID_PURPOSE, PHONE_PURPOSE, Scrubber, Subject
from storage import maintenance
from storage.lake import Lake
from storage.secrets import keyed_hash
from storage.tables import erasure_audit

log = get_logger(__name__)

BRONZE_FIRST = (WEBHOOK_EVENTS, QUARANTINE, OPS_EVENTS)


@dataclass
class ErasureReport:
    """Outcome of one erasure (no personal data: safe to log and return over the API)."""

    audit_id: str
    subject_hash: str
    dry_run: bool
    lids: int
    conversations: int
    lake: dict[str, int] = field(default_factory=dict)  # table -> rows rewritten
    store: dict[str, int] = field(default_factory=dict)  # ops table -> rows rewritten
    purged_files: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VerifyReport:
    """Where a subject still appears (``clean`` when nowhere)."""

    subject_hash: str
    audits: int
    lake: list[dict[str, Any]] = field(default_factory=list)  # {"table","path","kind","referenced"}
    store: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.lake and not self.store

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "clean": self.clean}


def _ordered_tables(lake: Lake) -> list[str]:
    present = lake.tables()
    first = [t for t in BRONZE_FIRST if t in present]
    return first + [t for t in present if t not in first]


def erase_contact(
    lake: Lake,
    engine: Engine,
    phone: str,
    *,
    requested_by: str = "cli",
    dry_run: bool = False,
    instances: frozenset[str] | None = None,
) -> ErasureReport:
    """Erase one contact everywhere (see module docstring). ``dry_run`` only counts.

    ``instances`` limits the erasure to rows of those instances (a tenant's request over the API);
    the CLI erases across all instances.
    """
    subject = Subject.from_phone(phone)
    scrubber = Scrubber(subject, instances=instances)
    if not dry_run:
        # bronze rows the consumers have not read yet would be read after the scrub (from the change
        # feed's original inserts) and bring the subject back into silver and the store
        catch_up_consumers(lake, engine)
    lake_scrub.discover_lids(lake, scrubber)
    conversations = lake_scrub.map_conversations(lake, scrubber)
    subject_hash = keyed_hash(subject.phone_e164, PHONE_PURPOSE)
    lid_hashes = sorted(keyed_hash(lid, LID_PURPOSE) for lid in subject.lids)
    report = ErasureReport(
        audit_id=uuid.uuid4().hex,
        subject_hash=subject_hash,
        dry_run=dry_run,
        lids=len(subject.lids),
        conversations=conversations,
    )
    tables = _ordered_tables(lake)
    if dry_run:
        for table in tables:
            hits = lake_scrub.find_affected(lake, table, scrubber)
            _rows, changed = lake_scrub.scrub_rows(hits.to_pylist(), hits.schema, scrubber)
            if changed:
                report.lake[table] = changed
        report.store = {s.table: s.rows for s in store_scrub.scrub_store(engine, scrubber, dry_run=True)}
        return report

    _audit_start(engine, report, lid_hashes, requested_by)
    log.info("erasure.started", audit_id=report.audit_id, lids=report.lids, conversations=conversations)
    try:
        for table in tables:
            result = lake_scrub.scrub_table(lake, table, scrubber)
            if result.rows:
                report.lake[table] = result.rows
        report.store = {s.table: s.rows for s in store_scrub.scrub_store(engine, scrubber)}
        catch_up_consumers(lake, engine)
        report.purged_files = purge_old_copies(lake, scrubber, tables)
        # the metrics API's serving stores are copies of the old gold rows (contact keys included)
        serving_store.discard(lake)
    except Exception:
        _audit_finish(engine, report, "failed")
        log.exception("erasure.failed", audit_id=report.audit_id)
        raise
    _audit_finish(engine, report, "completed")
    log.info(
        "erasure.completed",
        audit_id=report.audit_id,
        lake_rows=sum(report.lake.values()),
        store_rows=sum(report.store.values()),
        purged_files=report.purged_files,
    )
    return report


def catch_up_consumers(lake: Lake, engine: Engine) -> None:
    """Move bronze's change-feed readers (silver, the live projector) past the erasure commits.

    They only read inserts, so the erasure's updates are no-ops for them; but once the old files
    are purged, a reader still behind those versions could not read them any more.
    """
    from live.projector import run_once
    from silver.pipeline import build_silver

    build_silver(lake)
    run_once(lake, engine)


def purge_old_copies(lake: Lake, scrubber: Scrubber, tables: list[str]) -> int:
    """Checkpoint, then remove the subject from every file older versions still hold.

    A targeted vacuum: only files that contain the subject are deleted (or, for JSON commits,
    stripped of the statistics that held the values), so time travel and change-feed readers keep
    working for everything else. Readers that lag behind the erased versions cannot read them.
    """
    purged = 0
    for table in tables:
        hits = lake_files.scan_table_files(lake, table, scrubber)
        if not hits:
            continue
        maintenance.checkpoint(lake, table)
        hits = lake_files.scan_table_files(lake, table, scrubber)
        purged += len(lake_files.purge_unreferenced(lake, table, hits, scrubber))
    return purged


def verify_erasure(
    lake: Lake, engine: Engine, phone: str, *, record: bool = True, instances: frozenset[str] | None = None
) -> VerifyReport:
    """Scan every file of every lake table and every ops-store row for the subject.

    With ``instances`` (a tenant's request over the API) only what belongs to those instances is
    reported: data rows of other instances, and log or checkpoint entries that cannot be attributed
    to them, are ignored, so the answer never depends on another tenant's data. The CLI verifies
    operator-wide (every file, every entry).
    """
    subject = Subject.from_phone(phone)
    subject_hash = keyed_hash(subject.phone_e164, PHONE_PURPOSE)
    with engine.connect() as conn:
        audits = conn.execute(sa.select(erasure_audit).where(erasure_audit.c.subject_hash == subject_hash)).all()
    scrubber = Scrubber(subject, instances=instances)
    scrubber.lid_hashes = frozenset(h for a in audits for h in (a._mapping["lid_hashes"] or []))
    report = VerifyReport(subject_hash=subject_hash, audits=len(audits))
    for table in lake.tables():
        for hit in lake_files.scan_table_files(lake, table, scrubber, owned_only=True):
            report.lake.append({"table": table, "path": hit.path, "kind": hit.kind, "referenced": hit.referenced})
    report.store = {s.table: s.rows for s in store_scrub.scan_store(engine, scrubber)}
    if record and audits:
        latest = max(audits, key=lambda a: a._mapping["requested_at"])
        with engine.begin() as conn:
            conn.execute(
                sa.update(erasure_audit)
                .where(erasure_audit.c.id == latest._mapping["id"])
                .values(
                    verified_at=datetime.now(UTC),
                    verification={"clean": report.clean, "lake_files": len(report.lake), "store": report.store},
                )
            )
    log.info("erasure.verified", clean=report.clean, lake_files=len(report.lake), store_tables=len(report.store))
    return report


def _audit_start(engine: Engine, report: ErasureReport, lid_hashes: list[str], requested_by: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(erasure_audit).values(
                id=report.audit_id,
                subject_hash=report.subject_hash,
                lid_hashes=lid_hashes,
                requested_by=requested_by,
                requested_at=datetime.now(UTC),
                status="running",
            )
        )


def _audit_finish(engine: Engine, report: ErasureReport, status: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(erasure_audit)
            .where(erasure_audit.c.id == report.audit_id)
            .values(
                status=status,
                completed_at=datetime.now(UTC),
                tables={**report.lake, **{f"ops:{k}": v for k, v in report.store.items()}},
            )
        )
