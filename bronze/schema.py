"""Bronze table contracts: names, Arrow schemas and partitioning of the raw landing tables.

Bronze is the log (ARCHITECTURE.md, principle 1): every accepted webhook is one row of
``bronze/webhook_events``, raw and unchanged. Consumers (silver, the live projector) read these
columns and track their position by Delta version (change data feed is enabled).
"""

from __future__ import annotations

import pyarrow as pa

WEBHOOK_EVENTS = "bronze/webhook_events"
QUARANTINE = "bronze/quarantine"
OPS_EVENTS = "bronze/ops_events"

CDF_CONFIG: dict[str, str | None] = {"delta.enableChangeDataFeed": "true"}

UTC_TS = pa.timestamp("us", tz="UTC")

WEBHOOK_EVENTS_SCHEMA = pa.schema(
    [
        pa.field("receipt_id", pa.string(), nullable=False),  # sortable unique id of this delivery
        pa.field("received_at", UTC_TS, nullable=False),  # our receipt time (ingestion only)
        pa.field("received_date", pa.date32(), nullable=False),  # partition (UTC date of received_at)
        pa.field("instance", pa.string(), nullable=False),  # BeaZap instance id == Evolution instance name
        pa.field("event", pa.string(), nullable=False),  # dotted event name, e.g. messages.upsert
        pa.field("source_ip", pa.string()),
        pa.field("payload", pa.string(), nullable=False),  # the raw JSON body, unchanged
        pa.field("payload_hash", pa.string(), nullable=False),  # sha256 hex of payload (dedup)
    ]
)
WEBHOOK_EVENTS_PARTITIONS = ["received_date"]

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("receipt_id", pa.string(), nullable=False),
        pa.field("received_at", UTC_TS, nullable=False),
        pa.field("received_date", pa.date32(), nullable=False),
        pa.field("instance", pa.string()),
        pa.field("event", pa.string()),
        pa.field("source_ip", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("body", pa.binary(), nullable=False),  # raw bytes as received (may not be UTF-8)
    ]
)
QUARANTINE_PARTITIONS = ["received_date"]

# Operational actions (assign / transfer / resolve / reopen …) extracted from the ops store's
# action log, so silver conversations use the same facts as the live store.
OPS_EVENTS_SCHEMA = pa.schema(
    [
        pa.field("action_id", pa.string(), nullable=False),  # unique id in the ops action log
        pa.field("instance", pa.string(), nullable=False),
        pa.field("conversation_id", pa.string()),
        pa.field("contact_key", pa.string()),  # E.164 phone or LID JID of the chat
        pa.field("action", pa.string(), nullable=False),  # assign|transfer|resolve|reopen|route|unassign
        pa.field("actor_id", pa.string()),  # who did it (attendant id, 'system', 'router')
        pa.field("attendant_id", pa.string()),  # assignee after the action
        pa.field("team_id", pa.string()),  # team after the action
        pa.field("occurred_at", UTC_TS, nullable=False),
        pa.field("extracted_at", UTC_TS, nullable=False),
        pa.field("occurred_date", pa.date32(), nullable=False),  # partition
        pa.field("details", pa.string()),  # JSON with anything else (router source, confidence…)
    ]
)
OPS_EVENTS_PARTITIONS = ["occurred_date"]
