"""Prometheus metrics of the receiver (``GET /metrics``).

With several uvicorn workers, ``beazap serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers
start; prometheus-client then keeps each process's samples in files there and :func:`render`
aggregates all workers (multiprocess mode). Without it the metrics are those of this process.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

RECEIVED = Counter(
    "beazap_webhooks_received_total",
    "Webhooks accepted and committed to bronze, by event (unknown events count as 'other').",
    ["event"],
)
REJECTED = Counter(
    "beazap_webhooks_rejected_total",
    "Webhooks not accepted, by reason (status 400/401/413/422/503).",
    ["reason"],
)
COMMIT_SECONDS = Histogram(
    "beazap_bronze_commit_seconds",
    "Duration of one bronze group commit (including conflict retries).",
    ["table", "outcome"],
    buckets=(0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BATCH_ROWS = Histogram(
    "beazap_bronze_batch_rows",
    "Rows per bronze group commit.",
    ["table"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
)
REQUEST_SECONDS = Histogram(
    "beazap_webhook_request_seconds",
    "Time from the webhook request's arrival to its answer.",
    ["status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
PROJECTOR_LAG = Gauge(
    "beazap_projector_lag_seconds",
    "Age of the oldest bronze commit the live projector (beazap worker) has not applied yet (0 = caught up).",
    multiprocess_mode="max",
)


# Labelled children, looked up once per label value: ``labels()`` validates and locks on every call,
# which showed in the receiver's per-request profile (label sets are bounded: events, reasons, codes).
_received: dict[str, Any] = {}
_rejected: dict[str, Any] = {}
_request_seconds: dict[int, Any] = {}


def count_received(event_label: str) -> None:
    """One webhook committed (``event_label``: a known event or ``other``)."""
    child = _received.get(event_label)
    if child is None:
        child = _received[event_label] = RECEIVED.labels(event_label)
    child.inc()


def count_rejected(reason: str) -> None:
    """One webhook refused for ``reason``."""
    child = _rejected.get(reason)
    if child is None:
        child = _rejected[reason] = REJECTED.labels(reason)
    child.inc()


def observe_request(status: int, seconds: float) -> None:
    """Time from a webhook's arrival to its answer with ``status``."""
    child = _request_seconds.get(status)
    if child is None:
        child = _request_seconds[status] = REQUEST_SECONDS.labels(str(status))
    child.observe(seconds)


def observe_commit(table: str, rows: int, seconds: float, ok: bool) -> None:
    """Writer observer: commit latency and batch size."""
    COMMIT_SECONDS.labels(table, "ok" if ok else "failed").observe(seconds)
    BATCH_ROWS.labels(table).observe(rows)


def render() -> tuple[bytes, str]:
    """The exposition text of all metrics (every worker's in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
