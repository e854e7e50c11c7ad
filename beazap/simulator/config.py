"""What to simulate: one frozen :class:`SimulationConfig` (sizes, rates, probabilities).

Every knob has a realistic default; tests shrink ``instances``/``days``/``conversations_per_day``.
The same config (with the same seed) always produces byte-identical traffic and ground truth.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of one simulated world of Evolution API instances."""

    seed: int = 42
    instances: int = 2
    days: int = 3
    start: date = date(2026, 3, 2)
    # --- people ---------------------------------------------------------------------------------
    instances_per_account: int = 2  # accounts (tenants) own instances
    teams_per_instance: int = 2  # teams and attendants belong to one instance (as in the ops store)
    attendants_per_team: int = 3
    timezones: tuple[str, ...] = ("America/Sao_Paulo", "America/Manaus", "America/Recife")
    # --- traffic (per instance) -----------------------------------------------------------------
    conversations_per_day: float = 30.0  # new customer-initiated conversations on a weekday
    outbound_share: float = 0.15  # extra business-initiated conversations, as a share of the above
    groups_per_instance: int = 2
    group_messages_per_day: float = 8.0
    calls_per_day: float = 2.0
    broadcasts_per_day: float = 0.5  # status@broadcast stories (ignored by metrics)
    # --- behaviour ------------------------------------------------------------------------------
    business_open_hour: int = 8
    business_close_hour: int = 18
    saturday_close_hour: int = 12
    p_no_reply: float = 0.08  # customer is never answered
    p_resolve: float = 0.75  # conversation ends in an attendant's resolve (else it expires)
    p_return_within_window: float = 0.12  # customer comes back after resolution within the reopen window
    p_unassigned: float = 0.15  # nobody is ever assigned (phone-app replies are 'unattributed')
    p_phone_app: float = 0.3  # a human reply is typed in the WhatsApp app instead of through BeaZap
    p_transfer: float = 0.1
    p_auto_greeting_instance: float = 0.5  # share of instances that send an automated greeting
    p_lid_alt: float = 0.35  # contact addressed by LID with the phone in remoteJidAlt (2.3.5+)
    p_lid_late: float = 0.08  # LID-only at first, phone learned later
    p_lid_only: float = 0.05  # LID forever (contact_key stays the LID)
    p_no_ninth_digit: float = 0.2  # Brazilian contact sometimes written without the 9th digit
    p_media: float = 0.18
    p_edit: float = 0.03
    p_revoke: float = 0.015
    p_reaction: float = 0.05
    p_timestamp_string: float = 0.1  # messageTimestamp sent as a string
    # --- delivery -------------------------------------------------------------------------------
    p_duplicate: float = 0.03  # same body delivered twice (retry / global + instance webhook)
    p_upsert_echo: float = 0.3  # API-sent messages also arrive as messages.upsert (2.3.7 behaviour)
    p_out_of_order: float = 0.05  # delivery delayed seconds to minutes (acks may land before messages)
    p_late: float = 0.01  # delivery delayed 30 minutes to 3 days
    p_by_events_instance: float = 0.34  # instances posting to the per-event URLs (webhook_by_events)
    # --- sessionization (must match the product's settings) --------------------------------------
    session_timeout_hours: float = 24.0
    reopen_window_hours: float = 24.0
    abandon_after_hours: float = 7 * 24.0
    # --- live replay (``beazap simulate --post --live``) ------------------------------------------
    # [from, to) in epoch seconds: traffic only inside this wall-clock window (``start``/``days`` are
    # then ignored), no late delivery; the traffic's random streams also depend on it, so each live run
    # brings new contacts and message ids while instances, tokens and attendants stay those of ``seed``.
    window: tuple[float, float] | None = None
    # how many times faster than life people act: arrivals x pace, reply/answer/resolve delays / pace
    # (the session timeout and business hours stay as they are); 1.0 outside demos
    pace: float = 1.0

    def __post_init__(self) -> None:
        if self.instances < 1 or self.days < 1:
            raise ValueError("instances and days must be >= 1")
        if self.window is not None and not self.window[0] < self.window[1]:
            raise ValueError("window must be (from, to) with from < to")
        if self.pace <= 0:
            raise ValueError("pace must be > 0")
        if not self.timezones:
            raise ValueError("at least one time zone is needed")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"] = self.start.isoformat()
        out["timezones"] = list(self.timezones)
        return out
