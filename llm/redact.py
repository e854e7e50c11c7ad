"""Redaction of personal identifiers before any text leaves BeaZap.

Emails (also obfuscated: ``ana [at] gmail.com``, ``ana(at)gmail(dot)com``, ``ana arroba gmail ponto
com``), WhatsApp JIDs/LIDs, CPF, CNPJ, card numbers, CEPs, UUIDs (e.g. random PIX keys), URLs with
query strings and every phone number format seen in Brazil (``+55 (11) 98765-4321``,
``+55-11-9-8765-4321``, ``(11) 8765-4321``, ``011 98765 4321``, ``98765-4321``…) are replaced by
typed placeholders — a phone number always whole, country code and area code included.
As a last guard any run of 7 or more digits (with or without separators) becomes ``[NUMBER]``, so
an identifier in a format not listed here still cannot leak.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SEP = r"[\s.\-/]?"

_EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# "@" / "." written out: [at] (at) {at} <at> " at " and pt-BR "arroba"; [dot] (dot) " dot " "ponto".
_AT = r"(?:\s*@\s*|\s*[\[({<]\s*(?:at|arroba)\s*[\])}>]\s*|\s+(?:at|arroba)\s+)"
_DOT = r"(?:\s*\.\s*|\s*[\[({<]\s*(?:dot|ponto)\s*[\])}>]\s*|\s+(?:dot|ponto)\s+)"
_EMAIL_OBFUSCATED = re.compile(rf"[\w.+%-]+{_AT}[\w-]+(?:{_DOT}[a-z]{{2,}}\b)+", re.IGNORECASE)
_JID = re.compile(r"\b[\d:]{5,}@(?:s\.whatsapp\.net|c\.us|lid|g\.us)\b", re.IGNORECASE)
_URL = re.compile(r"\bhttps?://\S+", re.IGNORECASE)
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
_CNPJ = re.compile(r"(?<!\d)\d{2}\.?\d{3}\.?\d{3}\s?/?\s?\d{4}-?\d{2}(?!\d)")
_CPF = re.compile(r"(?<!\d)\d{3}\.?\d{3}\.?\d{3}\s?-?\s?\d{2}(?!\d)")
_CEP = re.compile(r"(?<!\d)\d{5}-\d{3}(?!\d)")
# 13–19 digits in groups (cards); validated with Luhn so long order numbers stay [NUMBER].
_CARD = re.compile(r"(?<!\d)(?:\d[ \-]?){12,18}\d(?!\d)")
# Phones, whole: an optional "+" (or "(+55)"), then 8–13 digits in groups split by spaces, dots,
# dashes or parentheses ("+55 (11) 98765-4321", "+55-11-9-8765-4321", "011 98765 4321"). It neither
# starts nor ends next to another digit group, so a longer number (a card) is never cut in two.
_PHONE = re.compile(
    r"(?<![\w+])(?<!\d[\s.\-])(?<!\d[\s.\-]{2})(?:\(\s?\+?\d{1,3}\s?\)|\+\s?\d|\(?\d)"
    r"(?:[\s.\-()]{0,3}\d){6,12}(?![\s.\-]{0,2}\d)"
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
    (_EMAIL_OBFUSCATED, "[EMAIL]"),
    (_UUID, "[ID]"),
    (_CNPJ, "[CNPJ]"),
    (_CPF, "[CPF]"),
    (_CEP, "[CEP]"),
    (
        _PHONE,
        _phone,
    ),  # before cards, so a phone is never cut by a card-shaped match (a rare 13-digit card reads [PHONE])
    (_CARD, _card),
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
