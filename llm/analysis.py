"""Analysis of one conversation: build its request, call the LLM, or apply the rules.

Pure functions over :class:`ConversationInput`; the batch (``llm.insights``) handles reading silver,
the cache, budgets, concurrency and writing gold.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from llm import prompts
from llm.client import LLMClient, LLMError, Usage
from llm.rules import ConversationFacts, RuleAnalyzer
from llm.schemas import ConversationAnalysis, analysis_schema, parse_analysis
from llm.transcript import TranscriptMessage, content_hash, render


@dataclass
class ConversationInput:
    """A closed conversation and its messages (from silver)."""

    conversation_id: str
    instance_id: str
    account_id: str | None
    status: str
    opened_at: datetime
    closed_at: datetime | None
    opened_date: date
    team_id: str | None
    assignee_id: str | None
    messages: list[TranscriptMessage] = field(default_factory=list)

    @property
    def facts(self) -> ConversationFacts:
        outbound = sum(1 for m in self.messages if m.direction == "outbound")
        return ConversationFacts(self.status, outbound > 0, outbound)


@dataclass
class PreparedRequest:
    transcript: str
    truncated: bool
    content_hash: str


@dataclass
class AnalysisOutcome:
    """One row of ``gold/conversation_insights`` before the conversation columns are added."""

    status: str  # ok | failed
    model: str
    analysis: ConversationAnalysis | None = None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    cached: bool = False
    latency_ms: float | None = None


def prepare(conv: ConversationInput, topics: Sequence[str], token_budget: int, prompt_version: str) -> PreparedRequest:
    """The redacted, truncated transcript and the content hash that keys the cache."""
    transcript, truncated = render(conv.messages, token_budget)
    digest = content_hash(transcript, (prompt_version, json.dumps(list(topics))))
    return PreparedRequest(transcript, truncated, digest)


def analyze_with_llm(client: LLMClient, request: PreparedRequest, topics: Sequence[str]) -> AnalysisOutcome:
    """Ask the LLM; invalid answers and errors are retried by the client, then reported as failed."""
    schema = analysis_schema(topics)
    messages = prompts.analysis_messages(request.transcript, topics, schema)
    try:
        result = client.complete(
            messages,
            schema_name="conversation_analysis",
            schema=schema,
            parse=lambda data: parse_analysis(data, topics),
        )
    except LLMError as exc:
        return AnalysisOutcome(status="failed", model=client.model, error=exc.reason, usage=exc.usage)
    return AnalysisOutcome(
        status="ok", model=result.model, analysis=result.value, usage=result.usage, latency_ms=result.latency_ms
    )


def analyze_with_rules(analyzer: RuleAnalyzer, conv: ConversationInput) -> AnalysisOutcome:
    return AnalysisOutcome(status="ok", model=analyzer.model, analysis=analyzer.analyze(conv.messages, conv.facts))


def outcome_from_cache(result: dict[str, Any], model: str, usage: Usage) -> AnalysisOutcome:
    return AnalysisOutcome(
        status="ok", model=model, analysis=ConversationAnalysis.model_validate(result), usage=usage, cached=True
    )
