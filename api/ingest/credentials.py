"""In-memory cache of instance webhook credentials, refreshed in the background.

The receiver must keep ingesting when the operational database is down (ARCHITECTURE.md,
principle 2), so credentials are held in memory: loaded at start, reloaded every
``instance_cache_refresh_seconds``, and reloaded on demand when an unknown instance (or a token
that no longer matches, i.e. a rotation) shows up. A failed reload keeps the previous credentials.

A miss never answers "no" from stale data: the request notes which reload it saw
(:meth:`CredentialCache.lookup`) and :meth:`CredentialCache.reload_after` waits for a reload that
*started after* that lookup, so an instance registered (or a token rotated) before the webhook was
sent is always found. Concurrent misses share one reload, and reloads start at most once per
``miss_refresh_interval`` (a miss waits for the next slot instead of being refused), so random
instance names cannot hammer the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from core.logging import get_logger
from storage.instances import InstanceCredential
from storage.secrets import hash_token

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
        self._by_token_hash: dict[str, InstanceCredential] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.loaded_at: float | None = None  # monotonic time of the last successful load
        self.last_attempt: float | None = None  # monotonic start of the last reload
        self.last_error: str | None = None
        self._started = 0  # reloads started so far (a reload's number is its start order)
        self._finished = 0  # number of the last reload that finished (success or failure)

    @property
    def loaded(self) -> bool:
        return self.loaded_at is not None

    def __len__(self) -> int:
        return len(self._credentials)

    def get(self, instance_id: str) -> InstanceCredential | None:
        return self._credentials.get(instance_id)

    def lookup(self, instance_id: str) -> tuple[InstanceCredential | None, int]:
        """The cached credential and a stamp of the data it came from (for :meth:`reload_after`)."""
        return self._credentials.get(instance_id), self._started

    def lookup_token(self, token: str) -> tuple[InstanceCredential | None, int]:
        """The instance whose webhook token is ``token`` (for bodies that name no instance), and a stamp."""
        return self._by_token_hash.get(hash_token(token)), self._started

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
        """Reload now (coalesced with a reload started after this call). True on success."""
        try:
            await self._reload_after(self._started, paced=False)
        except CredentialStoreUnavailableError:
            return False
        return True

    async def reload_after(self, stamp: int) -> None:
        """Wait until a reload that started after ``stamp`` (from :meth:`lookup`) has finished.

        Raises :class:`CredentialStoreUnavailableError` when that reload failed.
        """
        await self._reload_after(stamp, paced=True)

    async def _reload_after(self, stamp: int, *, paced: bool) -> None:
        async with self._lock:  # FIFO: waiters queued behind a reload find it done and return
            if self._finished <= stamp:
                if paced and self.last_attempt is not None:
                    wait = self.last_attempt + self.miss_refresh_interval - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)  # rate limit: the next reload slot, not a refusal
                await self._load()
            if self.last_error is not None:
                raise CredentialStoreUnavailableError(self.last_error)

    async def _load(self) -> None:
        self._started += 1
        number = self._started
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
        else:
            self._credentials = credentials
            self._by_token_hash = {c.webhook_token_hash: c for c in credentials.values()}
            self.loaded_at = time.monotonic()
            self.last_error = None
        finally:
            self._finished = number

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self.refresh()
