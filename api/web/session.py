"""Who is looking at the dashboard: the session cookie, CSRF checks and the login rate limit.

The session cookie (``api.auth.SESSION_COOKIE``) is HttpOnly, SameSite=Lax and ``Secure`` behind
HTTPS; its value is random and only its sha256 is stored (``storage.users``). Every form carries a
CSRF token: the session's own once logged in, a double-submit cookie on the login form. Failed logins
are limited per e-mail + client address (``MAX_FAILURES`` per ``WINDOW_SECONDS``, in this process).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import defaultdict, deque

from fastapi import Request
from sqlalchemy import Engine

from api.auth import SESSION_COOKIE
from storage.db import get_engine
from storage.users import Session, resolve_session

LOGIN_CSRF_COOKIE = "beazap_login_csrf"
MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60


def engine_of(request: Request) -> Engine:
    return getattr(request.app.state, "engine", None) or get_engine()


def current(request: Request) -> Session | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    return resolve_session(engine_of(request), cookie) if cookie else None


def csrf_ok(expected: str | None, given: object) -> bool:
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(expected, given)


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


class LoginLimiter:
    """Failed logins per (e-mail, client address) in a sliding window; blocked once ``limit`` is reached."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        times, cutoff = self._failures[key], time.monotonic() - self.window
        while times and times[0] < cutoff:
            times.popleft()
        return times

    def blocked(self, email: str, client: str) -> bool:
        return len(self._recent((email.strip().lower(), client))) >= self.limit

    def failed(self, email: str, client: str) -> None:
        self._recent((email.strip().lower(), client)).append(time.monotonic())

    def succeeded(self, email: str, client: str) -> None:
        self._failures.pop((email.strip().lower(), client), None)


def limiter(request: Request) -> LoginLimiter:
    found = getattr(request.app.state, "login_limiter", None)
    if found is None:
        found = request.app.state.login_limiter = LoginLimiter()
    return found
