"""Authenticate a webhook against its instance's credentials.

Evolution can present BeaZap's per-instance token three ways, all accepted:

1. the ``apikey`` header (a custom header on the instance webhook — the recommended set-up);
2. ``Authorization: Bearer <token>``, or, in Evolution's ``jwt_key`` mode, ``Bearer <HS256 JWT>``
   signed with the instance's JWT secret (signature and ``exp`` checked, 30 s leeway);
3. the envelope's ``apikey`` field (only when Evolution exposes instance tokens).

A request is authenticated when any presented credential matches. Token checks compare sha256
digests in constant time (:func:`storage.secrets.token_matches`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from storage.instances import InstanceCredential
from storage.secrets import token_matches

JWT_LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class AuthResult:
    ok: bool
    method: str | None = None  # header | bearer | jwt | envelope
    reason: str | None = None  # missing_credentials | wrong_token | expired_jwt | invalid_jwt | unknown_instance


def presented(headers: Mapping[str, str], envelope_apikey: str | None) -> list[tuple[str, str]]:
    """The credentials a request carries, as (source, value) pairs."""
    found: list[tuple[str, str]] = []
    header = headers.get("apikey")
    if header:
        found.append(("header", header.strip()))
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            found.append(("bearer", value.strip()))
    if envelope_apikey:
        found.append(("envelope", envelope_apikey))
    return found


def _looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and value.startswith("eyJ")


def authenticate(credential: InstanceCredential, offered: list[tuple[str, str]]) -> AuthResult:
    """Check the offered credentials against ``credential``; the first match wins."""
    if not offered:
        return AuthResult(False, reason="missing_credentials")
    reason = "wrong_token"
    for source, value in offered:
        if source == "bearer" and credential.jwt_secret and _looks_like_jwt(value):
            try:
                jwt.decode(
                    value,
                    credential.jwt_secret,
                    algorithms=["HS256"],
                    options={"require": ["exp"]},
                    leeway=JWT_LEEWAY_SECONDS,
                )
                return AuthResult(True, method="jwt")
            except jwt.ExpiredSignatureError:
                reason = "expired_jwt"
                continue
            except jwt.PyJWTError:
                reason = "invalid_jwt" if reason == "wrong_token" else reason
        if token_matches(value, credential.webhook_token_hash):
            return AuthResult(True, method=source)
    return AuthResult(False, reason=reason)
