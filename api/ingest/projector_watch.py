"""Is the live projector (``beazap worker``) keeping up? For ``/readyz`` and ``/metrics``.

The worker runs in its own process; the API judges it from what it leaves behind — its cursor in
the operational store against bronze's latest version (:func:`live.projector.projector_lag`). The
lag (age in seconds of the oldest bronze commit not applied yet) is exported as the gauge
``beazap_projector_lag_seconds``; above ``projector_stuck_seconds`` the projector is reported
``stuck``. Computed at most once per ``MIN_INTERVAL_SECONDS`` per process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from api.ingest import metrics
from core.logging import get_logger
from live.projector import projector_lag
from storage.lake import Lake

log = get_logger(__name__)

MIN_INTERVAL_SECONDS = 2.0


class ProjectorWatch:
    """Cached view of the projector's lag; ``status()`` is ``ok``, ``stuck`` or ``unknown``."""

    def __init__(self, lake: Lake, engine: Callable[[], Engine], stuck_seconds: float) -> None:
        self.lake = lake
        self._engine = engine
        self.stuck_seconds = stuck_seconds
        self._last: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def status(self) -> dict[str, Any]:
        """``{"status", "lag_seconds", "versions_behind"}`` (or ``{"status": "unknown", "error"}``)."""
        async with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] >= MIN_INTERVAL_SECONDS:
                self._last = (now, await asyncio.to_thread(self._measure))
            return self._last[1]

    def _measure(self) -> dict[str, Any]:
        try:
            lag = projector_lag(self.lake, self._engine())
        except Exception as exc:  # database or lake unreachable: say so, never fail the caller
            return {"status": "unknown", "error": type(exc).__name__}
        metrics.PROJECTOR_LAG.set(lag.seconds)
        stuck = lag.seconds > self.stuck_seconds
        if stuck:
            log.warning("projector behind bronze", lag_seconds=round(lag.seconds, 1), versions=lag.versions_behind)
        return {
            "status": "stuck" if stuck else "ok",
            "lag_seconds": round(lag.seconds, 3),
            "versions_behind": lag.versions_behind,
        }
