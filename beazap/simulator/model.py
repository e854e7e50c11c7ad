"""The simulator's public records: instances, teams, attendants, deliveries and the simulation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from beazap.simulator.config import SimulationConfig
    from beazap.simulator.truth import GroundTruth


@dataclass(frozen=True)
class SimInstance:
    """One Evolution instance (its name is BeaZap's instance id)."""

    id: str
    account_id: str
    timezone: str
    token: str  # webhook token BeaZap expects in the `apikey` header
    instance_uuid: str  # Evolution's internal id (`data.instanceId`)
    owner_jid: str  # the connected business number (`sender`)
    server_url: str
    by_events: bool  # posts to /webhooks/evolution/<event-suffix>
    auto_greeting: bool  # BeaZap sends an automated greeting when a conversation opens
    expose_apikey: bool  # the envelope's `apikey` carries the token


@dataclass(frozen=True)
class Team:
    id: str
    instance_id: str
    account_id: str
    name: str


@dataclass(frozen=True)
class Attendant:
    id: str
    instance_id: str
    account_id: str
    team_id: str
    name: str


def dumps(body: dict[str, Any]) -> str:
    """The one JSON serialization of a webhook body (bronze keeps exactly this text)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Delivery:
    """One HTTP POST Evolution makes (duplicates are separate deliveries with an identical body)."""

    instance: str
    event: str
    body: dict[str, Any]
    received_at: datetime  # when BeaZap receives it (simulated clock, UTC)
    path_suffix: str = ""  # "" or "/messages-upsert" style (webhook_by_events)
    seq: int = 0  # position in arrival order

    @cached_property
    def payload(self) -> str:
        """The exact JSON text posted (and stored in bronze)."""
        return dumps(self.body)


@dataclass
class Simulation:
    """Everything one :func:`simulate` call produced."""

    config: SimulationConfig
    instances: list[SimInstance]
    teams: list[Team]
    attendants: list[Attendant]
    deliveries: list[Delivery]  # arrival order
    ops_events: list[dict[str, Any]]  # rows of bronze/ops_events (bronze.schema.OPS_EVENTS_SCHEMA)
    ground_truth: GroundTruth
    stats: dict[str, int] = field(default_factory=dict)
    worlds: list[Any] = field(default_factory=list, repr=False)  # per-instance timelines (truth is built from them)

    def events_per_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.deliveries:
            counts[d.event] = counts.get(d.event, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
