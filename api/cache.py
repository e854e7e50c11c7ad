"""Metrics answer cache: Redis when ``BEAZAP_CACHE_URL`` is set, in-process otherwise.

Entries live ``cache_ttl_seconds`` (60–120 s recommended). Keys include the gold *fingerprint*
(the Delta versions of the gold tables the answer read), so when gold is rebuilt for an instance
the old answers are never served again; :meth:`MetricsCache.clear` drops everything explicitly.
Values are JSON-serializable objects (stored as JSON in Redis).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from core.logging import get_logger
from core.settings import Settings

log = get_logger(__name__)


def make_key(prefix: str, endpoint: str, params: dict[str, Any], fingerprint: str) -> str:
    """A stable cache key for an endpoint answer under a given gold fingerprint."""
    body = orjson.dumps(params, option=orjson.OPT_SORT_KEYS, default=str)
    digest = hashlib.sha256(body).hexdigest()[:32]
    return f"{prefix}:{endpoint}:{fingerprint}:{digest}"


class MetricsCache(Protocol):
    ttl: float

    def get(self, key: str) -> Any | None: ...

    def set(self, key: str, value: Any) -> None: ...

    def clear(self) -> None: ...


class InProcessCache:
    """A bounded LRU dict with per-entry expiry (thread-safe). ``clock`` is injectable for tests."""

    def __init__(self, ttl: float, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            expires, value = item
            if self._clock() >= expires:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = (self._clock() + self.ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class RedisCache:
    """Redis-backed cache (``SET key value PX ttl``); Redis errors degrade to cache misses."""

    def __init__(self, url: str, ttl: float, prefix: str) -> None:
        import redis

        self.ttl = ttl
        self.prefix = prefix
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def get(self, key: str) -> Any | None:
        try:
            raw = self._client.get(key)
        except Exception as exc:  # a cache outage must not fail a metrics request
            log.warning("metrics cache get failed", error=type(exc).__name__)
            return None
        return None if raw is None else orjson.loads(raw)

    def set(self, key: str, value: Any) -> None:
        try:
            self._client.set(key, orjson.dumps(value, default=str), px=max(1, int(self.ttl * 1000)))
        except Exception as exc:
            log.warning("metrics cache set failed", error=type(exc).__name__)

    def clear(self) -> None:
        try:
            keys = list(self._client.scan_iter(match=f"{self.prefix}:*", count=500))
            if keys:
                self._client.delete(*keys)
        except Exception as exc:
            log.warning("metrics cache clear failed", error=type(exc).__name__)


def cache_from_settings(settings: Settings) -> MetricsCache:
    """Redis when ``cache_url`` is set, in-process otherwise."""
    if settings.cache_url:
        return RedisCache(settings.cache_url, settings.cache_ttl_seconds, settings.cache_prefix)
    return InProcessCache(settings.cache_ttl_seconds)
