"""Secrets never land in bronze: the ``apikey`` values of a webhook body become keyed hashes.

Evolution puts the instance's API key in every webhook body (``"apikey": "…"``). Before a row is
written, each ``"apikey": "<value>"`` string in the payload (at any depth) is replaced by
``"hmac-sha256:<HMAC of the value under the deployment secret>"`` — equal keys still correlate,
the key itself cannot be recovered. Everything else in the body stays byte for byte as received;
``null`` keys are left alone. ``beazap scrub-apikeys`` applies the same rewrite to what earlier
versions stored (:mod:`governance.apikey_scrub`).
"""

from __future__ import annotations

import json
import re

from storage.secrets import keyed_hash

APIKEY_PURPOSE = "bronze-apikey"
HASH_PREFIX = "hmac-sha256:"
_TEXT_RE = re.compile(r'("apikey"\s*:\s*")((?:[^"\\]|\\.)*)(")')
_BYTES_RE = re.compile(rb'("apikey"\s*:\s*")((?:[^"\\]|\\.)*)(")')
# An apikey string value that is not (yet) a keyed hash: what the scrub looks for.
PLAIN_APIKEY_RE = re.compile(r'"apikey"\s*:\s*"(?!' + re.escape(HASH_PREFIX) + r')(?:[^"\\]|\\.)+"')


def hash_apikey(value: str) -> str:
    """The stored stand-in of one API key."""
    return HASH_PREFIX + keyed_hash(value, APIKEY_PURPOSE)


def _replacement(raw: str) -> str | None:
    if not raw or raw.startswith(HASH_PREFIX):
        return None
    if "\\" not in raw:  # no JSON escape: the text is the value (the usual case, no decoding)
        return hash_apikey(raw)
    try:
        value = json.loads(f'"{raw}"')
    except ValueError:
        value = raw
    return hash_apikey(value)


def _sub_text(match: re.Match[str]) -> str:
    new = _replacement(match.group(2))
    return match.group(0) if new is None else match.group(1) + new + match.group(3)


def _sub_bytes(match: re.Match[bytes]) -> bytes:
    new = _replacement(match.group(2).decode("utf-8", "replace"))
    return match.group(0) if new is None else match.group(1) + new.encode() + match.group(3)


def redact_apikeys(payload: str) -> str:
    """``payload`` with every ``apikey`` string value replaced by its keyed hash."""
    return _TEXT_RE.sub(_sub_text, payload) if '"apikey"' in payload else payload


def redact_apikeys_raw(body: bytes) -> bytes:
    """The same for raw bytes (quarantine): ASCII-compatible encodings in place, UTF-16 re-encoded."""
    if b'"apikey"' in body:
        return _BYTES_RE.sub(_sub_bytes, body)
    if b"\x00" in body[:4]:
        for codec in ("utf-16", "utf-16-le", "utf-16-be"):
            try:
                text = body.decode(codec)
            except UnicodeDecodeError:
                continue
            if '"apikey"' in text:
                bom = body[:2] in (b"\xff\xfe", b"\xfe\xff")
                out = redact_apikeys(text).encode(codec)
                return out if bom or codec != "utf-16" else out[2:]
            break
    return body


def has_plain_apikey(text: str | None) -> bool:
    """Whether ``text`` still holds an API key in clear."""
    return bool(text) and '"apikey"' in text and PLAIN_APIKEY_RE.search(text) is not None  # type: ignore[operator]
