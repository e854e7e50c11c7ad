"""Structured answers expected from the LLM (pydantic) and their JSON schemas.

The JSON schema sent as ``response_format`` narrows free fields to the allowed values (topics of the
configured taxonomy, candidate team ids), and every answer is validated again on our side: a server
that ignores ``response_format`` cannot slip an invalid value in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Urgency = Literal["low", "medium", "high"]
Intent = Literal["question", "complaint", "request", "purchase", "cancellation", "feedback", "other"]
ResolutionQuality = Literal["resolved", "partially_resolved", "unresolved", "unknown"]

INTENTS: tuple[str, ...] = Intent.__args__  # type: ignore[attr-defined]
URGENCIES: tuple[str, ...] = Urgency.__args__  # type: ignore[attr-defined]
RESOLUTION_QUALITIES: tuple[str, ...] = ResolutionQuality.__args__  # type: ignore[attr-defined]


class InvalidAnswerError(ValueError):
    """The model answered, but not with a valid structured answer (retried, then marked failed)."""


class ConversationAnalysis(BaseModel):
    """Insights on one closed conversation."""

    model_config = ConfigDict(extra="forbid")

    topic: str = Field(description="One topic of the taxonomy.")
    intent: Intent
    sentiment: float = Field(ge=-1.0, le=1.0, description="Customer sentiment, -1 (very negative) .. 1.")
    urgency: Urgency
    summary: str = Field(min_length=1, max_length=800, description="One paragraph, no personal data.")
    resolution_quality: ResolutionQuality


class RoutingAnswer(BaseModel):
    """Which team should take a new conversation."""

    model_config = ConfigDict(extra="forbid")

    team_id: str
    urgency: Urgency
    priority: int = Field(ge=1, le=5, description="1 = most urgent.")
    confidence: float = Field(ge=0.0, le=1.0)
    reason: str = Field(max_length=300)


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI strict mode: every property required, no additional properties, no titles."""
    props = schema.get("properties", {})
    for prop in props.values():
        prop.pop("title", None)
    schema.pop("title", None)
    schema["required"] = list(props)
    schema["additionalProperties"] = False
    return schema


def analysis_schema(topics: Sequence[str]) -> dict[str, Any]:
    schema = _strict(ConversationAnalysis.model_json_schema())
    schema["properties"]["topic"]["enum"] = list(topics)
    return schema


def routing_schema(team_ids: Sequence[str]) -> dict[str, Any]:
    schema = _strict(RoutingAnswer.model_json_schema())
    schema["properties"]["team_id"]["enum"] = list(team_ids)
    return schema


def parse_analysis(data: Any, topics: Sequence[str]) -> ConversationAnalysis:
    try:
        answer = ConversationAnalysis.model_validate(data)
    except ValueError as exc:
        raise InvalidAnswerError(f"analysis does not match the schema: {_first_error(exc)}") from None
    if answer.topic not in topics:
        raise InvalidAnswerError(f"topic {answer.topic!r} is not in the taxonomy")
    return answer


def parse_routing(data: Any, team_ids: Sequence[str]) -> RoutingAnswer:
    try:
        answer = RoutingAnswer.model_validate(data)
    except ValueError as exc:
        raise InvalidAnswerError(f"routing answer does not match the schema: {_first_error(exc)}") from None
    if answer.team_id not in team_ids:
        raise InvalidAnswerError("team_id is not one of the candidate teams")
    return answer


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', '')}"
    return str(exc).splitlines()[0]
