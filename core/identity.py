"""Who is who on WhatsApp: JIDs, phone numbers in E.164, LIDs, chat types, conversation ids.

Shared by silver (batch) and the live projector so both layers identify contacts and
conversations the same way (``docs/metrics.md`` → Messages, Conversations).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import phonenumbers

PHONE_SUFFIX = "@s.whatsapp.net"
LID_SUFFIX = "@lid"
GROUP_SUFFIX = "@g.us"
BROADCAST_JID = "status@broadcast"


def chat_type(jid: str | None) -> str | None:
    """``direct``, ``group``, ``broadcast`` or None for an unknown JID form."""
    if not jid:
        return None
    if jid == BROADCAST_JID or jid.endswith("@broadcast"):
        return "broadcast"
    if jid.endswith(GROUP_SUFFIX):
        return "group"
    if jid.endswith(PHONE_SUFFIX) or jid.endswith(LID_SUFFIX) or jid.endswith("@c.us"):
        return "direct"
    return None


def jid_user(jid: str) -> str:
    """The user part of a JID without device suffix: ``5511…:12@s.whatsapp.net`` → ``5511…``."""
    return jid.split("@", 1)[0].split(":", 1)[0]


def is_phone_jid(jid: str | None) -> bool:
    return bool(jid) and (jid.endswith(PHONE_SUFFIX) or jid.endswith("@c.us"))  # type: ignore[union-attr]


def is_lid_jid(jid: str | None) -> bool:
    return bool(jid) and jid.endswith(LID_SUFFIX)  # type: ignore[union-attr]


@lru_cache(maxsize=200_000)
def normalize_phone(raw: str | None) -> str | None:
    """E.164 (``+5511987654321``) from a JID or a number; Brazilian mobiles always with the 9th digit.

    Returns None when the input is not a plausible phone number.
    """
    if not raw or ("@" in raw and not is_phone_jid(raw)):
        return None
    digits = (
        "".join(ch for ch in jid_user(raw) if ch.isdigit()) if "@" in raw else "".join(ch for ch in raw if ch.isdigit())
    )
    if not 8 <= len(digits) <= 15:
        return None
    # Brazil: 55 + DDD(2) + 8-digit mobile (old form, first digit 6-9) → add the 9th digit.
    if digits.startswith("55") and len(digits) == 12 and digits[4] in "6789":
        digits = digits[:4] + "9" + digits[4:]
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def conversation_id(instance_id: str, contact_key: str, opening_message_id: str) -> str:
    """Stable, deterministic id of a conversation from its instance, contact and opening message."""
    digest = hashlib.sha256(f"{instance_id}\x1f{contact_key}\x1f{opening_message_id}".encode()).hexdigest()
    return "cv_" + digest[:24]
