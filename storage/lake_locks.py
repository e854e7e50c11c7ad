"""Cross-process locks on a local lake (``<lake>/_locks``): one compaction of a table at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from storage.lake import Lake


class CompactionBusyError(Exception):
    """Another process is compacting this table right now."""


@contextlib.contextmanager
def compaction_lock(lake: Lake, table: str, *, blocking: bool = False) -> Iterator[None]:
    """Exclusive right to compact ``table`` among processes sharing a local lake.

    delta-rs (1.6) lets two concurrent ``optimize`` runs over the same files both commit, which
    duplicates every compacted row. Whoever compacts a table — the receivers' auto-compaction (``bronze.compaction``) or
    scheduled maintenance (``storage.maintenance.optimize``) — must hold this lock (``fcntl.flock`` on
    ``<lake>/_locks/<layer>__<name>.compaction.lock``). Raises :class:`CompactionBusyError` when
    not ``blocking`` and someone else holds it. S3 lakes have no such lock: auto-compaction is off there.
    """
    if lake.is_s3:
        raise CompactionBusyError("no cross-process lock on S3")
    folder = Path(lake.root) / "_locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{table.replace('/', '__')}.compaction.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError as exc:
            raise CompactionBusyError(table) from exc
        yield
    finally:
        os.close(fd)  # closing releases the lock
