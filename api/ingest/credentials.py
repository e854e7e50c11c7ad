"""In-memory cache of instance webhook credentials, refreshed in the background.

The receiver must keep ingesting when the operational database is down (ARCHITECTURE.md,
principle 2), so credentials are held in memory: loaded at start, reloaded every
``instance_cache_refresh_seconds``, and reloaded on demand when an unknown instance (or a token
that no longer matches, i.e. a rotation) shows up — at most once per ``miss_refresh_interval`` so
random instance names cannot hammer the database. A failed reload keeps the previous credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from core.logging import get_logger
from storage.instances import InstanceCredential

log = get_logger(__name__)

Loader = Callable[[], dict[str, InstanceCredential]]


class CredentialStoreUnavailableError(Exception):
    """The credentials could not be loaded and the instance is not cached (answer 503)."""


class CredentialCache:
    """Instance id → :class:`InstanceCredential`, kept fresh by a background task."""

    def __init__(self, loader: Loader, *, refresh_seconds: float = 30.0, miss_refresh_interval: float = 1.0) -> None:
        self._loader = loader
        self.refresh_seconds = refresh_seconds
        self.miss_refresh_interval = miss_refresh_interval
        self._credentials: dict[str, InstanceCredential] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.loaded_at: float | None = None  # monotonic time of the last successful load
        self.last_attempt: float | None = None
        self.last_error: str | None = None

    @property
    def loaded(self) -> bool:
        return self.loaded_at is not None

    def __len__(self) -> int:
        return len(self._credentials)

    def get(self, instance_id: str) -> InstanceCredential | None:
        return self._credentials.get(instance_id)

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._periodic(), name="credential-cache-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> bool:
        """Reload now (coalesced with a concurrent reload). True on success."""
        started = time.monotonic()
        async with self._lock:
            if self.last_attempt is not None and self.last_attempt >= started:
                return self.last_error is None  # someone reloaded while we waited
            self.last_attempt = time.monotonic()
            try:
                credentials = await asyncio.to_thread(self._loader)
            except Exception as exc:
                self.last_error = type(exc).__name__
                log.warning(
                    "instance credentials reload failed; keeping cached ones",
                    error=type(exc).__name__,
                    cached=len(self._credentials),
                )
                return False
            self._credentials = credentials
            self.loaded_at = time.monotonic()
            self.last_error = None
            return True

    async def refresh_on_miss(self) -> bool:
        """Reload for an unknown instance/token, unless a reload happened very recently.

        Returns True when fresh credentials are available; raises
        :class:`CredentialStoreUnavailableError` when the reload failed.
        """
        recent = self.last_attempt is not None and time.monotonic() - self.last_attempt < self.miss_refresh_interval
        if recent:
            if self.last_error is not None:
                raise CredentialStoreUnavailableError(self.last_error)
            return False
        if not await self.refresh():
            raise CredentialStoreUnavailableError(self.last_error or "unknown error")
        return True

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self.refresh()
