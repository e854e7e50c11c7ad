"""Prompt templates. Changing any text here must come with a new ``llm_prompt_version``.

Only redacted transcripts are placed in a prompt (``llm.transcript``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llm.redact import redact

ANALYSIS_SYSTEM = """You analyse finished WhatsApp customer-service conversations for a business.
Roles: "customer" is the client, "agent" a human attendant, "bot" an automated message.
Personal data was replaced by placeholders such as [PHONE] or [CPF]; never try to restore it.
Answer with one JSON object only, matching this JSON schema:
{schema}
Rules: topic must be one of: {topics}. sentiment is the customer's overall sentiment from -1 to 1.
summary: one short paragraph in the conversation's language, without names or personal data.
resolution_quality: whether the customer's need was met by the end of the conversation."""

ROUTING_SYSTEM = """You route new WhatsApp customer-service conversations to the right team.
Read the customer's first messages and choose one team. Teams:
{teams}
Personal data was replaced by placeholders such as [PHONE]; never try to restore it.
Answer with one JSON object only, matching this JSON schema:
{schema}
priority: 1 is the most urgent, 5 the least. confidence: your certainty from 0 to 1."""


def analysis_messages(transcript: str, topics: Sequence[str], schema: dict[str, Any]) -> list[dict[str, str]]:
    system = ANALYSIS_SYSTEM.format(schema=json.dumps(schema, ensure_ascii=False), topics=", ".join(topics))
    return [{"role": "system", "content": system}, {"role": "user", "content": f"Conversation:\n{transcript}"}]


def routing_messages(transcript: str, teams: Sequence[tuple[str, str]], schema: dict[str, Any]) -> list[dict[str, str]]:
    team_lines = "\n".join(f"- {team_id}: {redact(name)}" for team_id, name in teams)
    system = ROUTING_SYSTEM.format(teams=team_lines, schema=json.dumps(schema, ensure_ascii=False))
    return [{"role": "system", "content": system}, {"role": "user", "content": f"First messages:\n{transcript}"}]
