"""The data subject of an erasure: one contact's identifiers and how to scrub them from values.

A contact is known by its E.164 phone, the Brazilian 8/9-digit variants of it and the LIDs that
WhatsApp used for it. :class:`Scrubber` rewrites any value (a column value, a raw webhook payload,
an ops-store JSON document) so that none of these identifiers remain: phone and LID JIDs become one
random pseudonymous LID (``0…@lid``, never a valid phone number, the same for the whole erasure so
conversations and counts are preserved) and message text of the contact is replaced by
``[erased]``. The pseudonym is random and not stored anywhere: the mapping cannot be reversed.
"""

from __future__ import annotations

import re
import secrets as pysecrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.identity import conversation_id, normalize_phone

ERASED = "[erased]"
INSTANCE_COLUMNS = ("instance_id", "instance")
LID_PURPOSE = "erasure-lid"
PHONE_PURPOSE = "erasure-phone"
_LID_RE = re.compile(r"(?<!\d)(\d{6,20})(?::\d+)?@lid")

# Keys of an Evolution payload (or any JSON document) whose string values are free text or names.
TEXT_KEYS = frozenset(
    {
        "conversation",
        "text",
        "caption",
        "pushname",
        "notify",
        "verifiedname",
        "name",
        "vcard",
        "displayname",
        "filename",
        "title",
        "body",
        "contenttext",
        "selecteddisplaytext",
        "jpegthumbnail",
        "comment",
        "address",
        "summary",
        "original_text",
        "push_name",
        "transcript",
        "content",
        "reason_text",
        "description",
        "subject",
    }
)
# Numeric location fields are personal data too.
ZERO_KEYS = frozenset({"degreeslatitude", "degreeslongitude"})


_PHONE_CHARS = frozenset("+0123456789 ()-.")


def phone_variants(phone: str) -> set[str]:
    """Digit strings of every form of ``phone``: E.164 digits plus the BR mobile without/with the 9th digit."""
    if not phone or not set(phone) <= _PHONE_CHARS:
        raise ValueError("not a valid phone number")
    e164 = normalize_phone(phone)
    if e164 is None:
        raise ValueError("not a valid phone number")
    digits = e164.lstrip("+")
    variants = {digits}
    if digits.startswith("55") and len(digits) == 13 and digits[4] == "9":
        variants.add(digits[:4] + digits[5:])
    return variants


def new_pseudonym() -> str:
    """A random LID-like user part: 15 digits starting with 0 (never parses as a phone number)."""
    return "0" + "".join(str(pysecrets.randbelow(10)) for _ in range(14))


@dataclass
class Subject:
    """One contact to erase: its E.164 phone, digit variants and known LIDs (user parts)."""

    phone_e164: str
    variants: set[str]
    lids: set[str] = field(default_factory=set)

    @classmethod
    def from_phone(cls, phone: str) -> Subject:
        variants = phone_variants(phone)
        e164 = normalize_phone(phone)  # valid: phone_variants checked it
        assert e164 is not None
        return cls(phone_e164=e164, variants=variants)

    def add_lids(self, values: Iterable[str | None]) -> None:
        for value in values:
            if value:
                user = value.split("@", 1)[0].split(":", 1)[0]
                if user.isdigit():
                    self.lids.add(user)

    @property
    def needles(self) -> list[str]:
        """Substrings whose presence marks a value as belonging to the subject (longest first)."""
        return sorted(self.variants | self.lids, key=len, reverse=True)


class Scrubber:
    """Rewrites values so that no identifier of ``subject`` remains (see module docstring)."""

    def __init__(self, subject: Subject, pseudonym: str | None = None, instances: frozenset[str] | None = None) -> None:
        self.subject = subject
        # When set, only rows of these instances are touched (a tenant's own erasure request).
        self.instances = instances
        self.pseudonym = pseudonym or new_pseudonym()
        self.pseudo_jid = f"{self.pseudonym}@lid"
        self.lid_hashes: frozenset[str] = frozenset()  # keyed hashes of erased LIDs (verification)
        self._pattern = self._compile()
        # Exact old value -> new value (conversation ids keyed by the phone, bronze payload hashes).
        self.value_map: dict[str, str] = {}

    def _compile(self) -> re.Pattern[str]:
        alternatives = "|".join(re.escape(n) for n in self.subject.needles)
        # +?<id>[:device][@suffix], not inside a longer digit run.
        return re.compile(rf"(?<!\d)\+?(?:{alternatives})(?::\d+)?(@s\.whatsapp\.net|@c\.us|@lid)?(?!\d)")

    def rebuild(self) -> None:
        """Recompile after identifiers were added to the subject (e.g. discovered LIDs)."""
        self._pattern = self._compile()

    # -- detection -------------------------------------------------------------------------------
    def in_scope(self, row: dict[str, Any]) -> bool:
        """False for rows of another tenant's instance (when the erasure is scoped)."""
        if self.instances is None:
            return True
        for column in INSTANCE_COLUMNS:
            if column in row:
                return row[column] in self.instances
        return True

    def matches(self, value: str | None) -> bool:
        """True when ``value`` holds one of the subject's identifiers (or an erased LID, by hash)."""
        if not value:
            return False
        if self._pattern.search(value) is not None:
            return True
        if self.lid_hashes and "@lid" in value:
            from storage.secrets import keyed_hash

            return any(keyed_hash(m.group(1), LID_PURPOSE) in self.lid_hashes for m in _LID_RE.finditer(value))
        return False

    # -- strings ---------------------------------------------------------------------------------
    def _sub(self, match: re.Match[str]) -> str:
        return self.pseudo_jid if match.group(1) else self.pseudonym

    def text(self, value: str | None, column: str = "") -> str | None:
        """Scrub one string value of a column named ``column``."""
        if value is None:
            return None
        if value in self.value_map:
            return self.value_map[value]
        whole = self._pattern.fullmatch(value)
        if whole is not None:
            if "phone" in column.lower():
                return None
            return self.pseudo_jid
        return self._pattern.sub(self._sub, value)

    def map_conversation(self, instance_id: str, old_id: str, opening_message_id: str) -> str:
        """Register the new id of a conversation whose contact key becomes the pseudonymous LID."""
        new_id = conversation_id(instance_id, self.pseudo_jid, opening_message_id)
        self.value_map[old_id] = new_id
        return new_id

    # -- JSON documents --------------------------------------------------------------------------
    def document(self, value: Any, erase_text: bool = True) -> Any:
        """Scrub a parsed JSON value: identifiers everywhere, free text under :data:`TEXT_KEYS`."""
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                new_key = self._pattern.sub(self._sub, key) if isinstance(key, str) else key
                lowered = str(key).lower()
                if erase_text and lowered in TEXT_KEYS and isinstance(item, str) and item:
                    out[new_key] = ERASED
                elif erase_text and lowered in ZERO_KEYS and isinstance(item, int | float):
                    out[new_key] = 0
                else:
                    out[new_key] = self.document(item, erase_text)
            return out
        if isinstance(value, list):
            return [self.document(v, erase_text) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def json_text(self, raw: str | None, erase_text: bool = True) -> str | None:
        """Scrub a JSON text (a bronze payload); non-JSON text is scrubbed as a plain string."""
        if raw is None:
            return None
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return ERASED if erase_text else self.text(raw)
        return orjson.dumps(self.document(parsed, erase_text)).decode("utf-8")

    def lids_near_phone(self, raw: str) -> set[str]:
        """LID user parts that appear in the same JSON object as one of the subject's phone forms."""
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return set()
        found: set[str] = set()
        variants = self.subject.variants

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                strings = [v for v in node.values() if isinstance(v, str)]
                if any(_phone_digits(s) in variants for s in strings):
                    for s in strings:
                        if s.endswith("@lid"):
                            found.add(s.split("@", 1)[0].split(":", 1)[0])
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(parsed)
        return found


def _phone_digits(value: str) -> str:
    if value.endswith("@lid"):
        return ""
    user = value.split("@", 1)[0].split(":", 1)[0]
    return user.lstrip("+")
