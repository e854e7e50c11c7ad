"""Traffic simulator: realistic Evolution API v2 webhooks with a ground truth (``docs/simulator.md``).

from beazap.simulator import SimulationConfig, simulate, write_bronze, post_deliveries
sim = simulate(SimulationConfig(seed=7, instances=3, days=7))
sim.deliveries        # arrival order, with duplicates, out-of-order and late deliveries
sim.ops_events        # rows for bronze/ops_events
sim.ground_truth      # what silver/gold must compute (conversations, messages, calls, volumes)
"""

from beazap.simulator.config import SimulationConfig
from beazap.simulator.generate import simulate
from beazap.simulator.model import Attendant, Delivery, SimInstance, Simulation, Team
from beazap.simulator.sinks import (
    apost_deliveries,
    bronze_table,
    post_deliveries,
    receipt_id,
    register_instances,
    write_bronze,
)
from beazap.simulator.truth import GroundTruth, TrueCall, TrueConversation, TrueMessage

__all__ = [
    "Attendant",
    "Delivery",
    "GroundTruth",
    "SimInstance",
    "Simulation",
    "SimulationConfig",
    "Team",
    "TrueCall",
    "TrueConversation",
    "TrueMessage",
    "apost_deliveries",
    "bronze_table",
    "post_deliveries",
    "receipt_id",
    "register_instances",
    "simulate",
    "write_bronze",
]
