"""The main job end to end: ``beazap demo`` on a tiny world through the real HTTP receiver."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from beazap.cli import app
from core.settings import get_settings


@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("BEAZAP_SECRET_KEY_FILE", str(tmp_path / "secret.key"))
    for var in ("BEAZAP_LAKE_URI", "BEAZAP_DATABASE_URL", "BEAZAP_CACHE_URL"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    yield tmp_path / "demo"
    get_settings.cache_clear()


def test_demo_runs_end_to_end_and_matches_ground_truth(demo_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(
        app,
        ["demo", "--home", str(demo_env), "--instances", "2", "--days", "2", "--seed", "3", "--live-seconds", "12"],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "messages.upsert" in out and "bronze/webhook_events" in out
    assert "✗" not in out and out.count("✓") == 4  # every ground-truth check passed
    assert "live queue" in out and "Busiest hours" in out
    # the live step: webhooks and attendants' actions against the receiver, then the command to go on
    live = out[out.index("9. The live queue, moving") :]
    moved = re.search(r"posted (\d+) webhooks \((\d+) accepted\); actions done (\d+)", live)
    assert moved is not None and moved.group(1) == moved.group(2) and int(moved.group(3)) > 0, live
    live = live[: live.index("Next steps")]
    assert "beazap simulate --post http://127.0.0.1:8000 --live" in live
    assert "bzk" not in live and "whk_sim_" not in live  # the tokens it used are not printed
    assert (demo_env / "lake" / "bronze" / "webhook_events" / "_delta_log").is_dir()
    assert (demo_env / "ground_truth.json").is_file()
    # it ends with the dashboard's URL and a working demo login
    tail = out[out.index("8. Web dashboard") :]
    assert "http://127.0.0.1:8000/app?from=2026-03-02&to=2026-03-03" in tail and "beazap-demo" in tail
    assert "http://127.0.0.1:8000/app/queue" in tail
    from storage.db import make_engine
    from storage.users import authenticate

    user = authenticate(make_engine(f"sqlite:///{demo_env / 'beazap.db'}"), "supervisor@demo.beazap", "beazap-demo")
    assert user is not None and user.role == "supervisor"

    # the printed next steps continue on the demo's data: the export line, then the printed query
    export = next(line.strip() for line in out.splitlines() if line.strip().startswith("export BEAZAP_"))
    for var in ("BEAZAP_LAKE_URI", "BEAZAP_DATABASE_URL", "BEAZAP_SECRET_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    for assignment in export.removeprefix("export ").split():
        name, value = assignment.split("=", 1)
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    assert Path(get_settings().lake_uri).resolve() == (demo_env / "lake").resolve()
    sql = next(line for line in out.splitlines() if "beazap sql -c" in line)
    query = sql.split('"')[1]
    result = CliRunner().invoke(app, ["sql", "-c", query, "-f", "csv"])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) > 1  # a header and gold rows
    assert "docs/quickstart.md" in out
    # the overview example asks for the simulated days (the API's default, the last 30 days, has none)
    period = re.search(r"overview\?from=(\S+)&to=(\S+?)\"", out)
    assert period is not None
    days = CliRunner().invoke(app, ["sql", "-c", "select min(day), max(day) from gold.daily_volume"])
    assert period.group(1) in days.output and period.group(2) in days.output, days.output
