"""Transcripts sent to the LLM: role-tagged, redacted, truncated to a token budget, hashed.

The content hash is taken over exactly what would be sent (redacted, truncated text plus the
taxonomy), so the cache key changes iff the request would change.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from llm.redact import redact

CHARS_PER_TOKEN = 4  # conservative average for PT-BR/EN text with BPE tokenizers
MAX_LINE_TOKENS = 200


@dataclass(frozen=True)
class TranscriptMessage:
    """One message as the analyser sees it (text is raw here; redaction happens in :func:`render`)."""

    direction: str  # inbound | outbound
    kind: str
    text: str | None
    automated: bool = False


def estimate_tokens(text: str) -> int:
    """A tokenizer-free upper-leaning estimate of the tokens in ``text``."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN)) if text else 0


def _role(message: TranscriptMessage) -> str:
    if message.direction == "inbound":
        return "customer"
    return "bot" if message.automated else "agent"


def render_line(message: TranscriptMessage) -> str:
    """``customer: texto`` with identifiers redacted; media without caption becomes ``[image]``."""
    body = redact(message.text).strip() if message.text else ""
    if message.kind != "text":
        body = f"[{message.kind}] {body}".strip()
    if not body:
        body = "[empty]"
    limit = MAX_LINE_TOKENS * CHARS_PER_TOKEN
    if len(body) > limit:
        body = body[:limit] + " […]"
    return f"{_role(message)}: {' '.join(body.split())}"


def render(messages: Iterable[TranscriptMessage], token_budget: int) -> tuple[str, bool]:
    """The redacted transcript within ``token_budget`` tokens and whether it was truncated.

    When too long, the opening (60 % of the budget) and the ending are kept, with a marker saying how
    many messages were left out in between: the problem and its outcome matter most.
    """
    lines = [render_line(m) for m in messages]
    costs = [estimate_tokens(line) + 1 for line in lines]
    if sum(costs) <= token_budget:
        return "\n".join(lines), False
    head_budget = int(token_budget * 0.6)
    head: list[str] = []
    used = 0
    i = 0
    while i < len(lines) and used + costs[i] <= head_budget:
        head.append(lines[i])
        used += costs[i]
        i += 1
    tail: list[str] = []
    j = len(lines) - 1
    marker_cost = 12
    while j >= i and used + costs[j] + marker_cost <= token_budget:
        tail.append(lines[j])
        used += costs[j]
        j -= 1
    omitted = j - i + 1
    middle = [f"[… {omitted} messages omitted …]"] if omitted > 0 else []
    return "\n".join(head + middle + list(reversed(tail))), True


def content_hash(transcript: str, context: Sequence[str] = ()) -> str:
    """sha256 of the transcript plus the context that shapes the answer (taxonomy, team list…)."""
    digest = hashlib.sha256(transcript.encode())
    for part in context:
        digest.update(b"\x1f" + part.encode())
    return digest.hexdigest()
