"""``beazap user add|list|remove``: dashboard users from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from beazap.cli import app
from core.settings import get_settings
from storage.db import make_engine
from storage.users import authenticate


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    monkeypatch.setenv("BEAZAP_DATABASE_URL", url)
    monkeypatch.setenv("BEAZAP_SECRET_KEY_FILE", str(tmp_path / "secret.key"))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_user_add_with_password_stdin_then_login_works(db: str) -> None:
    runner = CliRunner()
    r = runner.invoke(
        app,
        ["user", "add", "Ana@Acme.example", "--role", "supervisor", "--account", "ACME", "--password-stdin"],
        input="a long password\n",
    )
    assert r.exit_code == 0, r.output
    engine = make_engine(db)
    user = authenticate(engine, "ana@acme.example", "a long password")
    assert user is not None and user.role == "supervisor" and user.account_id == "ACME"
    assert authenticate(engine, "ana@acme.example", "wrong password") is None
    listed = runner.invoke(app, ["user", "list", "--account", "ACME"])
    assert "ana@acme.example\tsupervisor" in listed.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x@acme.example", "--role", "owner"], "role must be one of"),
        (["not-an-email", "--role", "admin"], "invalid e-mail"),
        (["y@acme.example", "--role", "attendant"], "needs --attendant"),
        (["z@acme.example", "--role", "attendant", "--attendant", "nobody"], "no attendant"),
    ],
)
def test_user_add_rejects_bad_input_with_a_clear_message(db: str, args: list[str], message: str) -> None:
    r = CliRunner().invoke(app, ["user", "add", *args, "--password-stdin"], input="a long password\n")
    assert r.exit_code != 0 and message in r.output


def test_user_add_refuses_a_short_password_and_a_duplicate(db: str) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["user", "add", "a@b.example", "--role", "admin", "--password-stdin"], input="short\n")
    assert r.exit_code != 0 and "at least 8" in r.output
    ok = runner.invoke(
        app, ["user", "add", "a@b.example", "--role", "admin", "--password-stdin"], input="long enough\n"
    )
    assert ok.exit_code == 0
    dup = runner.invoke(
        app, ["user", "add", "A@b.example", "--role", "admin", "--password-stdin"], input="long enough\n"
    )
    assert dup.exit_code != 0 and "already exists" in dup.output
