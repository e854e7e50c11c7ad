"""The receiver: from one webhook request to a committed bronze row (or a precise refusal).

Order of checks, and the answer of each (Evolution never retries 400/401/403/404/422 and retries
everything else, so a refusal is final only when retrying could never help):

1. body over ``max_body_bytes`` → 413 (checked by the route while reading);
2. not JSON / not UTF-8 / not an object / no ``event`` / no ``instance``: when the request still
   authenticates for an instance (named by the raw bytes or by its token) the raw bytes go to
   ``bronze/quarantine`` with the reason and the answer is 422; otherwise 400, nothing kept;
3. unknown instance or no valid credential → 401 (after a reload of the credentials that started
   after the lookup); credentials unknown *and* the operational store unreachable → 503;
4. authenticated but malformed — including a ``data.instanceId`` that is not the Evolution instance
   uuid registered for the instance (when one is registered) → row in ``bronze/quarantine`` and 422;
5. otherwise the raw body is appended to ``bronze/webhook_events`` through the group-commit writer
   and the request is answered 200 with its ``receipt_id`` only after the commit;
   the lake not writable → 503 (with ``Retry-After``), never 4xx, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from api.ingest import metrics
from api.ingest.auth import AuthResult, authenticate, presented
from api.ingest.credentials import CredentialCache, CredentialStoreUnavailableError, Loader
from api.ingest.envelope import (
    EnvelopeError,
    instance_id_mismatch,
    malformed_reason,
    metric_event,
    parse_envelope,
    salvage_instance,
    unparseable_reason,
)
from bronze.receipts import ReceiptIdGenerator
from bronze.rows import quarantine_row, webhook_event_row
from bronze.writer import QUARANTINE_TARGET, WEBHOOK_EVENTS_TARGET, GroupCommitWriter, LakeUnavailableError
from core.logging import get_logger
from core.settings import Settings
from storage.instances import InstanceCredential
from storage.lake import Lake

log = get_logger(__name__)

RETRY_AFTER_SECONDS = "5"


@dataclass(frozen=True)
class Outcome:
    """The HTTP answer to one webhook."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def reject(status: int, reason: str, error: str, **extra: Any) -> Outcome:
    """A refusal: count it by reason and build the JSON answer (503 carries Retry-After)."""
    metrics.count_rejected(reason)
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="beazap-webhooks"'
    return Outcome(status, {"error": error, "reason": reason, **extra}, headers)


class Receiver:
    """Authenticates webhooks and lands them in bronze. One per process (started by the app lifespan)."""

    def __init__(self, settings: Settings, lake: Lake, credential_loader: Loader) -> None:
        self.settings = settings
        self.lake = lake
        self.credentials = CredentialCache(
            credential_loader,
            refresh_seconds=settings.instance_cache_refresh_seconds,
            miss_refresh_interval=settings.instance_miss_refresh_seconds,
        )
        common = {
            "max_rows": settings.group_commit_max_rows,
            "max_wait_ms": settings.group_commit_max_wait_ms,
            "lanes": settings.group_commit_lanes,
            "compact_every": settings.bronze_compact_every_commits,
            "compact_min_interval_s": settings.bronze_compact_min_interval_seconds,
            "fast_commit": settings.bronze_fast_commit,
            "fsync": settings.bronze_fsync,
            "timeout_s": settings.receiver_commit_timeout_seconds,
            "observer": metrics.observe_commit,
        }
        self.events = GroupCommitWriter(lake, WEBHOOK_EVENTS_TARGET, **common)
        self.quarantine = GroupCommitWriter(lake, QUARANTINE_TARGET, **common)
        self._ids = ReceiptIdGenerator()
        self._probe: tuple[float, bool, str | None] | None = None

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.events.start()
        await self.quarantine.start()
        await self.credentials.start()
        log.info(
            "receiver started",
            lake=self.lake.root if not self.lake.is_s3 else "s3",
            instances=len(self.credentials),
            pid=os.getpid(),
        )

    async def stop(self) -> None:
        await self.credentials.stop()
        await self.events.stop()
        await self.quarantine.stop()

    # --- one webhook ------------------------------------------------------------------------------
    async def handle(
        self, body: bytes, headers: Mapping[str, str], client_ip: str | None, suffix: str | None = None
    ) -> Outcome:
        received_at = datetime.now(UTC)
        try:
            envelope = parse_envelope(body)
        except EnvelopeError as exc:
            return await self._unparseable(body, headers, client_ip, exc, received_at)

        offered = presented(headers, envelope.apikey)
        try:
            result, credential = await self._authenticate(envelope.instance, offered)
        except CredentialStoreUnavailableError:
            return reject(503, "credentials_unavailable", "cannot verify instance credentials now; retry later")
        if not result.ok:
            reason = result.reason or "wrong_token"
            if reason == "unknown_instance":
                log.warning("webhook for unknown instance refused", instance=envelope.instance)
            else:
                log.warning("webhook with invalid credentials refused", instance=envelope.instance, reason=reason)
            message = "JWT expired" if reason == "expired_jwt" else "unknown instance or invalid credentials"
            return reject(401, reason, message)

        receipt_id = self._ids.new(int(received_at.timestamp() * 1000))
        problem = malformed_reason(envelope, suffix)
        if problem is None and credential and instance_id_mismatch(envelope, credential.evolution_instance_uuid):
            problem = "instance_id_mismatch"
        if problem is not None:
            return await self._quarantine(
                body, envelope.instance, envelope.event[:200], client_ip, problem, received_at, receipt_id
            )

        row = webhook_event_row(
            receipt_id=receipt_id,
            received_at=received_at,
            instance=envelope.instance,
            event=envelope.event,
            source_ip=client_ip,
            payload=body.decode("utf-8"),
        )
        try:
            await self.events.write(row)
        except LakeUnavailableError:
            return reject(503, "lake_unavailable", "the lake cannot be written now; retry later")
        metrics.count_received(metric_event(envelope.event))
        return Outcome(200, {"status": "accepted", "receipt_id": receipt_id, "event": envelope.event})

    async def _authenticate(
        self, instance: str, offered: list[tuple[str, str]]
    ) -> tuple[AuthResult, InstanceCredential | None]:
        """Check ``offered`` against ``instance``'s credentials, reloading them when they may be stale.

        Raises :class:`CredentialStoreUnavailableError` when a needed reload failed.
        """
        credential, stamp = self.credentials.lookup(instance)
        if credential is None:  # registered since our last reload? wait for a fresh one
            await self.credentials.reload_after(stamp)
            credential, stamp = self.credentials.lookup(instance)
        if credential is None:
            return AuthResult(False, reason="unknown_instance"), None
        result = authenticate(credential, offered)
        if not result.ok and result.reason == "wrong_token":
            # The token may have been rotated since the reload this credential came from.
            await self.credentials.reload_after(stamp)
            credential, _ = self.credentials.lookup(instance)
            if credential is not None:
                result = authenticate(credential, offered)
        return result, credential

    async def _unparseable(
        self,
        body: bytes,
        headers: Mapping[str, str],
        client_ip: str | None,
        error: EnvelopeError,
        received_at: datetime,
    ) -> Outcome:
        """A body that is not a readable envelope: quarantined when the request authenticates for an
        instance (named by the raw bytes or by its token), else 400 and nothing kept."""
        instance, envelope_key = salvage_instance(body)
        offered = presented(headers, envelope_key)
        if instance is None:
            for source, value in offered:
                credential, _ = self.credentials.lookup_token(value)
                if credential is not None and source != "envelope":
                    instance = credential.instance_id
                    break
        if instance is None:
            return reject(400, error.reason, error.message)
        try:
            result, _credential = await self._authenticate(instance, offered)
        except CredentialStoreUnavailableError:
            return reject(503, "credentials_unavailable", "cannot verify instance credentials now; retry later")
        if not result.ok:
            return reject(400, error.reason, error.message)
        receipt_id = self._ids.new(int(received_at.timestamp() * 1000))
        reason = unparseable_reason(body, error)
        return await self._quarantine(body, instance, None, client_ip, reason, received_at, receipt_id)

    async def _quarantine(
        self,
        body: bytes,
        instance: str,
        event: str | None,
        client_ip: str | None,
        reason: str,
        received_at: datetime,
        receipt_id: str,
    ) -> Outcome:
        """Keep an authenticated but unusable body, raw, in ``bronze/quarantine``; answer 422."""
        row = quarantine_row(
            receipt_id=receipt_id,
            received_at=received_at,
            instance=instance,
            event=event,
            source_ip=client_ip,
            reason=reason,
            body=body,
        )
        try:
            await self.quarantine.write(row)
        except LakeUnavailableError:
            return reject(503, "lake_unavailable", "the lake cannot be written now; retry later")
        log.warning("webhook quarantined", instance=instance, reason=reason, receipt_id=receipt_id)
        return reject(
            422,
            f"quarantined_{reason}",
            f"malformed webhook ({reason}); kept in quarantine",
            receipt_id=receipt_id,
            quarantined=True,
        )

    # --- readiness --------------------------------------------------------------------------------
    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether this process can accept webhooks: lake writable and credentials loaded."""
        now = time.monotonic()
        if self._probe is None or now - self._probe[0] > 1.0:
            ok, error = await asyncio.to_thread(self._probe_lake)
            self._probe = (now, ok, error)
        _, lake_ok, lake_error = self._probe
        writer_ok = self.events.stats.healthy
        creds_ok = self.credentials.loaded
        ready = lake_ok and writer_ok and creds_ok
        detail: dict[str, Any] = {
            "lake": "ok" if lake_ok and writer_ok else "unavailable",
            "credentials": "ok" if creds_ok else "not loaded",
            "instances": len(self.credentials),
            "commits": self.events.stats.commits,
        }
        if not ready:
            detail["error"] = lake_error or self.events.stats.last_error or self.credentials.last_error
        return ready, detail

    def _probe_lake(self) -> tuple[bool, str | None]:
        """Open the events table (creating it if needed); on a local lake also write a probe file."""
        try:
            self.events.appender.ensure_table()
            self.lake.open(WEBHOOK_EVENTS_TARGET.table)
            if not self.lake.is_s3:
                probe = os.path.join(self.lake.uri(WEBHOOK_EVENTS_TARGET.table), f".probe-{os.getpid()}")
                with open(probe, "wb") as handle:
                    handle.write(b"ok")
                    handle.flush()
                    os.fsync(handle.fileno())
                os.remove(probe)
            return True, None
        except Exception as exc:
            return False, f"{type(exc).__name__}: {str(exc)[:200]}"
