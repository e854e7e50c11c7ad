"""Rule-based routing: keyword rules, business hours and the instance's default team.

Configuration lives in ``instances.routing`` (JSON, shared with :mod:`live.assignment`)::

    {"auto_assign": true, "router": "llm",
     "default_team_id": "t-support", "after_hours_team_id": "t-night",
     "rules": [{"team_id": "t-billing", "keywords": ["boleto", "fatura"], "urgency": "medium"}],
     "use_llm": true}

Keywords match accent- and case-insensitively on whole words of the customer's first messages.
Whether the instance is open (for the after-hours team) is asked of its configuration
(:meth:`core.instance_config.InstanceConfig.is_open`: weekly schedule, effective-dated versions,
holidays, in its time zone; the default schedule applies when none is stored).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llm.rules import fold

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
URGENT_WORDS = ("urgente", "urgent", "emergencia", "emergency", "imediatamente", "immediately", "asap")


@dataclass(frozen=True)
class KeywordRule:
    team_id: str
    keywords: tuple[str, ...]
    urgency: str | None = None


@dataclass(frozen=True)
class RoutingConfig:
    """An instance's routing configuration (parsed from ``instances.routing``)."""

    default_team_id: str | None = None
    after_hours_team_id: str | None = None
    rules: tuple[KeywordRule, ...] = ()
    use_llm: bool = True
    router: str | None = None
    auto_assign: bool = False

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> RoutingConfig:
        raw = raw or {}
        rules = []
        for item in raw.get("rules") or []:
            if not isinstance(item, Mapping) or not item.get("team_id"):
                continue
            keywords = tuple(fold(str(k)).strip() for k in item.get("keywords") or [] if str(k).strip())
            if keywords:
                rules.append(KeywordRule(str(item["team_id"]), keywords, item.get("urgency")))
        return cls(
            default_team_id=raw.get("default_team_id"),
            after_hours_team_id=raw.get("after_hours_team_id"),
            rules=tuple(rules),
            use_llm=bool(raw.get("use_llm", True)),
            router=raw.get("router"),
            auto_assign=bool(raw.get("auto_assign", False)),
        )


@dataclass(frozen=True)
class Proposal:
    """A routing proposal: team plus urgency/priority, where it came from and how sure it is."""

    team_id: str | None
    source: str  # rule | llm
    reason: str  # keyword | after_hours | default | llm | fallback:<why>
    urgency: str = "low"
    priority: int = 3
    confidence: float | None = None
    model: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


PRIORITY_BY_URGENCY = {"high": 1, "medium": 2, "low": 3}


def _matches(text: str, keyword: str) -> bool:
    return re.search(rf"(?<![a-z0-9]){re.escape(keyword)}(?![a-z0-9])", text) is not None


def urgency_of(texts: Sequence[str]) -> str:
    folded = fold(" ".join(texts))
    if any(_matches(folded, w) for w in URGENT_WORDS):
        return "high"
    return "medium" if folded.count("!") >= 3 else "low"


def keyword_proposal(config: RoutingConfig, texts: Sequence[str]) -> Proposal | None:
    """The first rule (in configured order) whose keyword appears in the customer's messages."""
    folded = fold(" ".join(texts))
    for rule in config.rules:
        hit = next((k for k in rule.keywords if _matches(folded, k)), None)
        if hit is not None:
            urgency = rule.urgency if rule.urgency in PRIORITY_BY_URGENCY else urgency_of(texts)
            return Proposal(
                rule.team_id, "rule", "keyword", urgency, PRIORITY_BY_URGENCY[urgency], 1.0, details={"rule": hit}
            )
    return None


def fallback_proposal(config: RoutingConfig, texts: Sequence[str], open_now: bool, why: str | None = None) -> Proposal:
    """After-hours team when closed, else the default team (``team_id`` None when neither is set)."""
    urgency = urgency_of(texts)
    if not open_now and config.after_hours_team_id:
        return Proposal(config.after_hours_team_id, "rule", "after_hours", urgency, PRIORITY_BY_URGENCY[urgency], 1.0)
    reason = f"fallback:{why}" if why else "default"
    return Proposal(config.default_team_id, "rule", reason, urgency, PRIORITY_BY_URGENCY[urgency], None)
