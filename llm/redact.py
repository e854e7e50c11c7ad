"""Redaction of personal identifiers before any text leaves BeaZap.

Emails, WhatsApp JIDs/LIDs, CPF, CNPJ, card numbers, CEPs, UUIDs (e.g. random PIX keys), URLs with
query strings and every phone number format seen in Brazil (``+55 (11) 98765-4321``,
``(11) 8765-4321``, ``011 98765 4321``, ``98765-4321``…) are replaced by typed placeholders.
As a last guard any run of 7 or more digits (with or without separators) becomes ``[NUMBER]``, so
an identifier in a format not listed here still cannot leak.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SEP = r"[\s.\-/]?"

_EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_JID = re.compile(r"\b[\d:]{5,}@(?:s\.whatsapp\.net|c\.us|lid|g\.us)\b", re.IGNORECASE)
_URL = re.compile(r"\bhttps?://\S+", re.IGNORECASE)
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
_CNPJ = re.compile(r"(?<!\d)\d{2}\.?\d{3}\.?\d{3}\s?/?\s?\d{4}-?\d{2}(?!\d)")
_CPF = re.compile(r"(?<!\d)\d{3}\.?\d{3}\.?\d{3}\s?-?\s?\d{2}(?!\d)")
_CEP = re.compile(r"(?<!\d)\d{5}-\d{3}(?!\d)")
# 13–19 digits in groups (cards); validated with Luhn so long order numbers stay [NUMBER].
_CARD = re.compile(r"(?<!\d)(?:\d[ \-]?){12,18}\d(?!\d)")
# Phones: optional +country, optional (DDD) or DDD with leading 0, 4–5 digits, separator, 4 digits.
_PHONE = re.compile(
    r"(?<![\w])(?:\+\s?\d{1,3}[\s.\-]?)?(?:\(\s?0?\d{2,3}\s?\)|0?\d{2,3})?[\s.\-]?9?\s?\d{4}[\s.\-]?\d{4}(?!\d)"
)
# Anything else that looks like an identifier: 7+ digits possibly split by common separators.
_LONG_DIGITS = re.compile(r"(?<!\d)\+?\d(?:[\s.\-()]{0,2}\d){6,}(?!\d)")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group(0)


def _phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[PHONE]" if len(digits) >= 8 else match.group(0)


_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (_URL, "[URL]"),
    (_JID, "[PHONE]"),
    (_EMAIL, "[EMAIL]"),
    (_UUID, "[ID]"),
    (_CARD, _card),
    (_CNPJ, "[CNPJ]"),
    (_CPF, "[CPF]"),
    (_CEP, "[CEP]"),
    (_PHONE, _phone),
    (_LONG_DIGITS, "[NUMBER]"),
]


def redact(text: str | None) -> str:
    """``text`` with every personal identifier replaced by a placeholder (``[PHONE]``, ``[CPF]``…)."""
    if not text:
        return ""
    out = text
    for pattern, replacement in _RULES:
        out = pattern.sub(replacement, out)
    return out
