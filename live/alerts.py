"""SLA alerts: when an open conversation's clock becomes at risk or breached, tell people once.

:func:`scan` computes every open conversation's clocks with :mod:`live.sla` (the instance's policy,
its basis and at-risk share) and records each NEW state change in ``sla_alerts``: the unique key
(conversation, clock, clock start, state) makes an alert fire once, however often the scan runs or
however many workers run it. A clock on a ``business`` basis does not alert while the instance is
closed (it alerts at the next scan after opening, if still due). Each alert gets an in-app
notification for the conversation's assignee and one for the supervisors, and — when the account
configured one — an outbound webhook in the ``alert_deliveries`` outbox.

:func:`deliver_due` POSTs due deliveries: JSON body, ``X-BeaZap-Signature: sha256=<hex>`` =
HMAC-SHA256 of ``<X-BeaZap-Timestamp>.<body>`` under the account's secret, and ``Idempotency-Key``
(the alert's id, the same on every retry: at least once, deduplicated by the receiver). A failure is
retried with exponential backoff up to ``alert_webhook_attempts``.

:func:`tick` does both — and trims the live stream's change log to ``live_changes_keep_hours`` —;
``beazap worker`` calls it from its loop (at most every ``interval``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.logging import get_logger
from core.settings import Settings, get_settings
from core.utc import as_utc, utc_row
from live.feed import prune_changes
from live.sla import clocks, policies
from storage.console_repo import alert_webhook_target
from storage.tables import alert_deliveries, alert_webhooks, conversations, instances, notifications, sla_alerts

log = get_logger(__name__)
SUPERVISORS = "supervisors"
ALERT_STATES = ("at_risk", "breached")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-BeaZap-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def scan(engine: Engine, now: datetime) -> list[int]:
    """Record the new at-risk/breached state changes of open conversations; the new alerts' ids."""
    c = conversations.c
    with engine.connect() as conn:
        rows = [
            utc_row(r)
            for r in conn.execute(
                select(conversations, instances.c.account_id)
                .join(instances, instances.c.id == c.instance_id)
                .where(c.status == "open", instances.c.active.is_(True))
            )
        ]
        if not rows:
            return []
        seen = {
            (r.conversation_id, r.clock, as_utc(r.clock_started_at), r.state)
            for r in conn.execute(
                select(
                    sla_alerts.c.conversation_id, sla_alerts.c.clock, sla_alerts.c.clock_started_at, sla_alerts.c.state
                )
                .join(conversations, conversations.c.id == sla_alerts.c.conversation_id)
                .where(c.status == "open")
            )
        }
        hooked = set(conn.execute(select(alert_webhooks.c.account_id)).scalars())
    rules = policies(engine, sorted({r["instance_id"] for r in rows}))
    created: list[int] = []
    for conv in rows:
        policy = rules[conv["instance_id"]]
        for name, clock in clocks(conv, policy, now)["clocks"].items():
            if clock["state"] not in ALERT_STATES:
                continue
            started = as_utc(clock["started_at"])
            if (conv["id"], name, started, clock["state"]) in seen:
                continue
            if clock["basis"] == "business" and not policy.calendar.is_open(now):
                continue  # outside business hours: nothing to alert about until the instance opens
            alert_id = _record(engine, conv, name, clock, started, now, webhook=conv["account_id"] in hooked)
            if alert_id is not None:
                created.append(alert_id)
    return created


def _record(
    engine: Engine,
    conv: dict[str, Any],
    clock_name: str,
    clock: dict[str, Any],
    started: datetime,
    now: datetime,
    *,
    webhook: bool,
) -> int | None:
    """One alert with its notifications and outbox row, in one transaction (None: already recorded)."""
    try:
        with engine.begin() as conn:
            alert_id = conn.execute(
                insert(sla_alerts)
                .values(
                    account_id=conv["account_id"],
                    instance_id=conv["instance_id"],
                    conversation_id=conv["id"],
                    clock=clock_name,
                    state=clock["state"],
                    clock_started_at=started,
                    assignee_id=conv["assignee_id"],
                    due_at=clock["due_at"],
                    created_at=now,
                )
                .returning(sla_alerts.c.id)
            ).scalar_one()
            recipients = [r for r in (conv["assignee_id"], SUPERVISORS) if r]
            conn.execute(
                insert(notifications),
                [
                    {"account_id": conv["account_id"], "recipient": r, "alert_id": alert_id, "created_at": now}
                    for r in recipients
                ],
            )
            if webhook:
                conn.execute(
                    insert(alert_deliveries).values(
                        alert_id=alert_id, account_id=conv["account_id"], next_attempt_at=now
                    )
                )
    except IntegrityError:  # another worker recorded the same state change first
        return None
    log.info("sla_alert.recorded", alert_id=alert_id, clock=clock_name, state=clock["state"])
    return int(alert_id)


def alert_body(alert: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "id": f"sla-alert-{alert['id']}",
            "type": f"sla.{alert['state']}",
            "account_id": alert["account_id"],
            "instance_id": alert["instance_id"],
            "conversation_id": alert["conversation_id"],
            "clock": alert["clock"],
            "state": alert["state"],
            "clock_started_at": as_utc(alert["clock_started_at"]),
            "due_at": as_utc(alert["due_at"]),
            "assignee_id": alert["assignee_id"],
            "created_at": as_utc(alert["created_at"]),
        }
    )


def deliver_due(
    engine: Engine, now: datetime, settings: Settings | None = None, *, transport: httpx.BaseTransport | None = None
) -> int:
    """POST every due alert webhook once; how many were delivered."""
    settings = settings or get_settings()
    d = alert_deliveries.c
    with engine.connect() as conn:
        due = [
            utc_row(r)
            for r in conn.execute(
                select(sla_alerts, d.attempts)
                .join(alert_deliveries, d.alert_id == sla_alerts.c.id)
                .where(
                    d.delivered_at.is_(None),
                    d.next_attempt_at <= now,
                    d.attempts < settings.alert_webhook_attempts,
                )
                .order_by(d.next_attempt_at)
                .limit(200)
            )
        ]
    delivered = 0
    with httpx.Client(timeout=settings.alert_webhook_timeout_seconds, transport=transport) as client:
        for alert in due:
            target = alert_webhook_target(engine, alert["account_id"])
            error = "no webhook configured"
            if target is not None:
                url, secret = target
                body = alert_body(alert)
                stamp = str(int(now.timestamp()))
                headers = {
                    "Content-Type": "application/json",
                    "X-BeaZap-Timestamp": stamp,
                    "X-BeaZap-Signature": sign(secret, stamp, body),
                    "Idempotency-Key": f"sla-alert-{alert['id']}",
                }
                try:
                    resp = client.post(url, content=body, headers=headers)
                    error = "" if resp.is_success else f"HTTP {resp.status_code}"
                except httpx.HTTPError as exc:
                    error = f"unreachable ({type(exc).__name__})"
            attempts = alert["attempts"] + 1
            values: dict[str, Any] = {"attempts": attempts}
            if not error:
                values["delivered_at"] = now
                delivered += 1
            else:
                values["last_error"] = error[:200]
                backoff = settings.alert_webhook_backoff_seconds * 2 ** (attempts - 1)
                values["next_attempt_at"] = now + timedelta(seconds=backoff)
                log.warning("sla_alert.delivery_failed", alert_id=alert["id"], attempts=attempts, error=error)
            with engine.begin() as conn:
                conn.execute(update(alert_deliveries).where(d.alert_id == alert["id"]).values(**values))
    return delivered


_last_tick = {"at": float("-inf")}


def tick(engine: Engine, settings: Settings | None = None, *, interval: float = 5.0) -> None:
    """The worker loop's hook: scan and deliver, at most every ``interval`` seconds."""
    if time.monotonic() - _last_tick["at"] < interval:
        return
    _last_tick["at"] = time.monotonic()
    now = datetime.now(UTC)
    settings = settings or get_settings()
    scan(engine, now)
    deliver_due(engine, now, settings)
    prune_changes(engine, now - timedelta(hours=settings.live_changes_keep_hours))
