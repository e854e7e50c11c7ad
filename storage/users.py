"""Dashboard users and their sessions: people log in to the web app as themselves.

A user belongs to one account and has a role — ``admin`` (configuration, users, tokens),
``supervisor`` (every metric and conversation of the account) or ``attendant`` (their own figures;
``attendant_id`` links them to the attendant record). Passwords are hashed with argon2id
(``argon2-cffi``). A session is a random cookie value of which only the sha256 is stored, with its
own CSRF token and an expiry. :func:`resolve_session` turns a cookie into the same
:class:`~storage.tokens.TenantScope` an API token gives, so every query is scoped alike.
"""

from __future__ import annotations

import secrets as pysecrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, insert, select, update

from storage import secrets
from storage.instances import ensure_account
from storage.tables import attendants, instances, user_sessions, users
from storage.tokens import TenantScope

ROLES = ("admin", "supervisor", "attendant")
# The API-token scope a role acts with: admins administer, supervisors act on conversations,
# attendants only read (and only their own figures, enforced in api/auth.py).
ROLE_SCOPE = {"admin": "admin", "supervisor": "agent", "attendant": "read-only"}
SESSION_TTL = timedelta(hours=12)
MIN_PASSWORD = 8

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the e-mail is unknown, so a wrong e-mail costs the same time as a wrong password."""
    return _hasher.hash("not-a-password")


class UserError(ValueError):
    """A user cannot be created as asked (the message is safe to show)."""


@dataclass(frozen=True)
class User:
    id: str
    account_id: str
    email: str
    role: str
    attendant_id: str | None


@dataclass(frozen=True)
class Session:
    """A logged-in user: who they are, what they may see, and the CSRF token of their forms."""

    user: User
    scope: TenantScope
    csrf_token: str


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or " " in value or len(value) > 320:
        raise UserError("invalid e-mail address")
    return value


def create_user(
    engine: Engine, email: str, password: str, role: str, account_id: str, attendant_id: str | None = None
) -> User:
    """Create a user (the account is created when missing). Raises :class:`UserError` on bad input."""
    email = normalize_email(email)
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
    if role == "attendant" and not attendant_id:
        raise UserError("an attendant user needs --attendant (the attendant record it maps to)")
    ensure_account(engine, account_id)
    with engine.begin() as conn:
        if attendant_id is not None:
            owner = conn.execute(
                select(instances.c.account_id)
                .select_from(attendants.join(instances, attendants.c.instance_id == instances.c.id))
                .where(attendants.c.id == attendant_id)
            ).scalar()
            if owner != account_id:  # another account's attendant is reported exactly like a missing one
                raise UserError(f"no attendant {attendant_id!r} in account {account_id!r}")
        if conn.execute(select(users.c.id).where(users.c.email == email)).first():
            raise UserError(f"a user with e-mail {email} already exists")
        user = User(uuid.uuid4().hex, account_id, email, role, attendant_id)
        conn.execute(
            insert(users).values(
                id=user.id,
                account_id=account_id,
                email=email,
                password_hash=_hasher.hash(password),
                role=role,
                attendant_id=attendant_id,
            )
        )
    return user


def list_users(engine: Engine, account_id: str) -> list[User]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(users.c.id, users.c.account_id, users.c.email, users.c.role, users.c.attendant_id)
            .where(users.c.account_id == account_id, users.c.active.is_(True))
            .order_by(users.c.email)
        ).all()
    return [User(*row) for row in rows]


def deactivate_user(engine: Engine, account_id: str, user_id: str) -> bool:
    """Deactivate a user of ``account_id`` and end their sessions; False when there is no such user."""
    with engine.begin() as conn:
        done = conn.execute(
            update(users).where(users.c.id == user_id, users.c.account_id == account_id).values(active=False)
        ).rowcount
        if done:  # another account's user id changes nothing, not even its sessions
            conn.execute(delete(user_sessions).where(user_sessions.c.user_id == user_id))
    return bool(done)


def authenticate(engine: Engine, email: str, password: str) -> User | None:
    """The active user with this e-mail and password, or None (same cost whether or not the e-mail exists)."""
    try:
        email = normalize_email(email)
    except UserError:
        email = ""
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.email == email, users.c.active.is_(True))).first()
    try:
        _hasher.verify(row.password_hash if row else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    return User(row.id, row.account_id, row.email, row.role, row.attendant_id)


def start_session(engine: Engine, user: User, now: datetime | None = None) -> str:
    """Open a session for ``user`` and return the cookie value (stored only as its sha256)."""
    now = now or datetime.now(UTC)
    value = secrets.new_token("bzs")
    with engine.begin() as conn:
        conn.execute(delete(user_sessions).where(user_sessions.c.expires_at < now))
        conn.execute(
            insert(user_sessions).values(
                id_hash=secrets.hash_token(value),
                user_id=user.id,
                csrf_token=pysecrets.token_urlsafe(32),
                expires_at=now + SESSION_TTL,
            )
        )
    return value


def end_session(engine: Engine, value: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(user_sessions).where(user_sessions.c.id_hash == secrets.hash_token(value)))


def resolve_session(engine: Engine, value: str, now: datetime | None = None) -> Session | None:
    """The live session behind a cookie value, or None when unknown, expired or the user is inactive."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        row = conn.execute(
            select(
                users.c.id,
                users.c.account_id,
                users.c.email,
                users.c.role,
                users.c.attendant_id,
                user_sessions.c.csrf_token,
                user_sessions.c.expires_at,
            )
            .select_from(user_sessions.join(users, user_sessions.c.user_id == users.c.id))
            .where(user_sessions.c.id_hash == secrets.hash_token(value), users.c.active.is_(True))
        ).first()
        if row is None:
            return None
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        if expires <= now:
            return None
        ids = frozenset(conn.execute(select(instances.c.id).where(instances.c.account_id == row.account_id)).scalars())
    user = User(row.id, row.account_id, row.email, row.role, row.attendant_id)
    scope = TenantScope(
        row.account_id, f"user:{row.id}", ROLE_SCOPE[row.role], ids, role=row.role, attendant_id=row.attendant_id
    )
    return Session(user, scope, row.csrf_token)
