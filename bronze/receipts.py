"""Receipt ids: sortable, unique ids for every webhook delivery the receiver accepts.

A receipt id is a ULID (26 Crockford base32 characters): 48 bits of Unix milliseconds followed by
80 random bits. Ids sort by time as plain strings; within one process they are strictly increasing
even inside the same millisecond (the random part is incremented), and across processes they
collide with probability ~2^-80 per millisecond.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_RANDOM_MAX = (1 << _RANDOM_BITS) - 1


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # every 10-bit value as two digits


def _encode(value: int, length: int) -> str:
    """``value`` as ``length`` Crockford base32 digits (zero-padded); two digits per lookup."""
    if length % 2:
        return _ALPHABET[(value >> (5 * (length - 1))) & 31] + _encode(value, length - 1)
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in range(5 * length - 10, -1, -10)])


_POOL_BYTES = 4000  # 400 ids per os.urandom call (one syscall per id cost ~20 µs on the hot path)


class ReceiptIdGenerator:
    """Monotonic ULID generator (thread-safe; random bits from a buffered ``os.urandom``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_rand = 0
        self._pool = b""
        self._pos = 0
        self._pid = os.getpid()

    def _random80(self) -> int:
        if self._pos + 10 > len(self._pool) or os.getpid() != self._pid:  # a forked child draws its own bytes
            self._pool, self._pos, self._pid = os.urandom(_POOL_BYTES), 0, os.getpid()
        chunk = self._pool[self._pos : self._pos + 10]
        self._pos += 10
        return int.from_bytes(chunk, "big")

    def new(self, now_ms: int | None = None) -> str:
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        with self._lock:
            if ms <= self._last_ms:
                # Same (or earlier: clock stepped back) millisecond: keep order by incrementing.
                ms = self._last_ms
                rand = self._last_rand + 1
                if rand > _RANDOM_MAX:
                    ms += 1
                    rand = self._random80()
            else:
                rand = self._random80()
            self._last_ms, self._last_rand = ms, rand
        return _encode(ms << _RANDOM_BITS | rand, 26)


_default = ReceiptIdGenerator()


def new_receipt_id() -> str:
    """A new receipt id from the process-wide generator."""
    return _default.new()


def receipt_time(receipt_id: str) -> datetime:
    """The UTC millisecond encoded in ``receipt_id``."""
    ms = 0
    for char in receipt_id[:10].upper():
        ms = ms * 32 + _ALPHABET.index(char)
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
