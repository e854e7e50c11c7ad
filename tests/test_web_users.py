"""Dashboard users and sessions in the operational store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from storage import migrate
from storage.instances import add_instance
from storage.tables import user_sessions, users
from storage.users import (
    SESSION_TTL,
    UserError,
    authenticate,
    create_user,
    deactivate_user,
    end_session,
    resolve_session,
    start_session,
)


def test_migration_matches_the_models(engine: sa.Engine) -> None:
    assert migrate.drift(engine) == []


def test_password_is_hashed_and_sessions_resolve_to_the_account_scope(engine: sa.Engine, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("BEAZAP_SECRET_KEY_FILE", str(tmp_path / "secret.key"))
    add_instance(engine, "inst-1", "acct", token="t1")
    add_instance(engine, "inst-2", "other", token="t2")
    user = create_user(engine, " Ana@Example.COM ", "a long password", "supervisor", "acct")
    with engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.email, users.c.password_hash)).one()
    assert stored.email == "ana@example.com" and stored.password_hash.startswith("$argon2id$")
    assert "a long password" not in stored.password_hash
    assert authenticate(engine, "ANA@example.com", "a long password") == user
    assert authenticate(engine, "ana@example.com", "a long passwort") is None
    assert authenticate(engine, "nobody@example.com", "a long password") is None

    cookie = start_session(engine, user)
    with engine.connect() as conn:
        assert conn.execute(sa.select(user_sessions.c.id_hash)).scalar() != cookie  # only the hash is stored
    session = resolve_session(engine, cookie)
    assert session is not None and session.scope.instance_ids == frozenset({"inst-1"})
    assert session.scope.role == "supervisor" and session.scope.scope == "agent" and len(session.csrf_token) > 20
    assert resolve_session(engine, cookie, now=datetime.now(UTC) + SESSION_TTL + timedelta(seconds=1)) is None
    end_session(engine, cookie)
    assert resolve_session(engine, cookie) is None


def test_deactivated_user_loses_sessions_and_login(engine: sa.Engine, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("BEAZAP_SECRET_KEY_FILE", str(tmp_path / "secret.key"))
    user = create_user(engine, "bia@example.com", "a long password", "admin", "acct")
    cookie = start_session(engine, user)
    assert not deactivate_user(engine, "another-account", user.id)  # scoped to the account
    assert resolve_session(engine, cookie) is not None
    assert deactivate_user(engine, "acct", user.id)
    assert resolve_session(engine, cookie) is None
    assert authenticate(engine, "bia@example.com", "a long password") is None


def test_bad_users_are_refused(engine: sa.Engine) -> None:
    with pytest.raises(UserError, match="role"):
        create_user(engine, "x@example.com", "a long password", "owner", "acct")
    with pytest.raises(UserError, match="attendant"):
        create_user(engine, "x@example.com", "a long password", "attendant", "acct")
    create_user(engine, "x@example.com", "a long password", "admin", "acct")
    with pytest.raises(UserError, match="already exists"):
        create_user(engine, "X@example.com", "a long password", "admin", "acct")
