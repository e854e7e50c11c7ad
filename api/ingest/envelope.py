"""Evolution API webhook envelopes: parse the body, name what is wrong, map URL suffixes to events.

Two kinds of problems, answered differently (Evolution never retries 400/401/422):

* :class:`EnvelopeError`: the body cannot be read as an envelope — not UTF-8 JSON, not an object,
  no ``event`` or no ``instance``. When the request still authenticates (its token names the
  instance, or the raw bytes do: :func:`salvage_instance`) the raw body is quarantined (422);
  otherwise it is answered 400 and nothing is kept.
* :func:`malformed_reason` (422 + quarantine): the sender authenticated, but the envelope is not
  something bronze should hold as a webhook event (bad event name, event contradicting the
  ``webhook_by_events`` URL suffix, no ``data``). The raw body is kept in ``bronze/quarantine``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

# Evolution API v2 event names (the body's dotted form). Unknown events are accepted too; this list
# only maps URL suffixes back to dotted names and bounds the Prometheus label set.
KNOWN_EVENTS = frozenset(
    {
        "application.startup",
        "qrcode.updated",
        "connection.update",
        "status.instance",
        "messages.set",
        "messages.upsert",
        "messages.edited",
        "messages.update",
        "messages.delete",
        "send.message",
        "send.message.update",
        "contacts.set",
        "contacts.upsert",
        "contacts.update",
        "presence.update",
        "chats.set",
        "chats.upsert",
        "chats.update",
        "chats.delete",
        "groups.upsert",
        "groups.update",
        "group-participants.update",
        "call",
        "labels.edit",
        "labels.association",
        "instance.create",
        "instance.delete",
        "remove.instance",
        "logout.instance",
        "typebot.start",
        "typebot.change-status",
        "errors",
    }
)
_EVENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SUFFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


def event_key(name: str) -> str:
    """Spelling-insensitive form of an event name: ``messages.upsert``/``MESSAGES_UPSERT`` → ``messages-upsert``."""
    return name.strip().lower().replace(".", "-").replace("_", "-")


_BY_KEY = {event_key(e): e for e in KNOWN_EVENTS}


def suffix_to_event(suffix: str) -> str:
    """The dotted event of a ``webhook_by_events`` URL suffix (``messages-upsert`` → ``messages.upsert``).

    Known events map exactly (``group-participants-update`` → ``group-participants.update``);
    unknown suffixes get their first dash turned into a dot.
    """
    key = event_key(suffix)
    return _BY_KEY.get(key) or key.replace("-", ".", 1)


def metric_event(name: str) -> str:
    """Event label for metrics: the known event, or ``other`` (bounded label cardinality)."""
    return _BY_KEY.get(event_key(name), "other")


class EnvelopeError(Exception):
    """A body that cannot be attributed to an instance (answered 400 with ``message``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Envelope:
    """The fields of a webhook body the receiver looks at (the raw body is what bronze keeps)."""

    event: str
    instance: str
    apikey: str | None
    fields: dict[str, Any]


def parse_envelope(body: bytes) -> Envelope:
    """Parse ``body``; raise :class:`EnvelopeError` when it is not a JSON object with event and instance."""
    if not body.strip():
        raise EnvelopeError("empty_body", "empty body: expected a JSON object")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("invalid_json", f"body is not valid UTF-8 JSON: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise EnvelopeError("not_object", f"body must be a JSON object, got {type(doc).__name__}")
    event = doc.get("event")
    instance = doc.get("instance")
    if event is None or event == "":
        raise EnvelopeError("missing_event", "missing field: event")
    if not isinstance(event, str):
        raise EnvelopeError("missing_event", "field event must be a string")
    if instance is None or instance == "":
        raise EnvelopeError("missing_instance", "missing field: instance")
    if not isinstance(instance, str):
        raise EnvelopeError("missing_instance", "field instance must be a string")
    apikey = doc.get("apikey")
    return Envelope(event=event, instance=instance, apikey=apikey if isinstance(apikey, str) else None, fields=doc)


_INSTANCE_RE = re.compile(r'"instance"\s*:\s*"([^"\\]{1,200})"')
_APIKEY_RE = re.compile(r'"apikey"\s*:\s*"([^"\\]{1,500})"')


def decode_loosely(body: bytes) -> str:
    """Best-effort text of a body that is not valid UTF-8 JSON (UTF-16 with or without BOM, else latin-1)."""
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(body) > 1 and b"\x00" in body[:4]):
        for codec in ("utf-16", "utf-16-le", "utf-16-be"):
            try:
                return body.decode(codec)
            except UnicodeDecodeError:
                continue
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")


def salvage_instance(body: bytes) -> tuple[str | None, str | None]:
    """(instance, envelope apikey) found in the raw text of an unparseable body, when present."""
    text = decode_loosely(body)
    instance = _INSTANCE_RE.search(text)
    apikey = _APIKEY_RE.search(text)
    return (instance.group(1) if instance else None), (apikey.group(1) if apikey else None)


def unparseable_reason(body: bytes, error: EnvelopeError) -> str:
    """Quarantine reason of an unparseable body: ``invalid_encoding`` when it is not UTF-8 at all."""
    if error.reason == "invalid_json":
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return "invalid_encoding"
    return error.reason


def instance_id_mismatch(envelope: Envelope, registered_uuid: str | None) -> bool:
    """Whether the body's ``data.instanceId`` (or that of any entry of a ``data`` list) names another
    Evolution instance than the uuid registered for ``envelope.instance``.

    Nothing to compare — no uuid registered, or no ``instanceId`` in the body — is not a mismatch.
    """
    if not registered_uuid:
        return False
    expected = registered_uuid.strip().lower()
    data = envelope.fields.get("data")
    entries = data if isinstance(data, list) else [data]
    for entry in entries:
        if isinstance(entry, dict):
            found = entry.get("instanceId")
            if found is not None and (not isinstance(found, str) or found.strip().lower() != expected):
                return True
    return False


def malformed_reason(envelope: Envelope, suffix: str | None) -> str | None:
    """Why an authenticated envelope is not a webhook event (→ quarantine), or None when it is fine."""
    if not _EVENT_RE.match(envelope.event):
        return "invalid_event_name"
    if suffix is not None:
        if not _SUFFIX_RE.match(suffix):
            return "invalid_event_suffix"
        if event_key(suffix) != event_key(envelope.event):
            return "event_suffix_mismatch"
    data = envelope.fields.get("data", ...)
    if data is ...:
        return "missing_data"
    if data is not None and not isinstance(data, dict | list):
        return "invalid_data"
    return None
