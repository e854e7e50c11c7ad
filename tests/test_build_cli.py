"""`beazap build silver|gold|all [--from --to]`: the Dagster assets' steps without Dagster, clear
errors on bad days and empty lakes; `beazap sql` on a lake where nothing was built yet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from beazap.cli import app
from core.settings import Settings
from orchestration.common import key
from orchestration.definitions import build_definitions
from orchestration.defs.gold import GOLD_TABLES, gold_partitions
from orchestration.defs.silver import SILVER_TABLES
from orchestration.resources import LakeResource, OpsStoreResource
from storage.lake import Lake
from storage.maintenance import read_table
from tests import governance_data as gd

runner = CliRunner()


def _rows(lake: Lake, table: str) -> list[str]:
    return sorted(json.dumps(r, default=str, sort_keys=True) for r in read_table(lake, table).to_pylist())


def _bronze_copy(lake: Lake, path: Path) -> Lake:
    copy = Lake(root=str(path))
    shutil.copytree(Path(lake.root) / "bronze", path / "bronze")
    return copy


def test_build_all_writes_what_the_dagster_assets_write(settings: Settings, lake: Lake, tmp_path: Path) -> None:
    gd.build(days=3).write(lake)
    dagster_lake = _bronze_copy(lake, tmp_path / "dagster")

    result = runner.invoke(app, ["build", "all"])
    assert result.exit_code == 0, result.output
    assert "silver: 10 tables" in result.output and f"gold: {len(GOLD_TABLES)} tables" in result.output

    built = dg.materialize(
        list(build_definitions(settings).assets or []),
        instance=dg.DagsterInstance.ephemeral(),
        resources={"lake": LakeResource(lake_uri=dagster_lake.root), "ops_store": OpsStoreResource()},
        selection=[key(t) for t in (*SILVER_TABLES, *GOLD_TABLES)],
        partition_key=gold_partitions(settings).get_last_partition_key(),
    )
    assert built.success
    for table in GOLD_TABLES:
        assert _rows(lake, table) == _rows(dagster_lake, table), table
    assert _rows(lake, "silver/conversations") == _rows(dagster_lake, "silver/conversations")
    assert read_table(lake, "gold/daily_volume").num_rows > 0


def test_build_gold_replaces_only_the_days_asked_for(settings: Settings, lake: Lake, tmp_path: Path) -> None:
    gd.build(days=3).write(lake)
    assert runner.invoke(app, ["build", "silver"]).exit_code == 0
    full = Lake(root=str(tmp_path / "full"))
    shutil.copytree(Path(lake.root) / "silver", tmp_path / "full" / "silver")
    shutil.copytree(Path(lake.root) / "bronze", tmp_path / "full" / "bronze")
    from gold.runner import build_gold

    build_gold(full, settings=settings)
    days = sorted({r["day"].isoformat() for r in read_table(full, "gold/daily_volume").to_pylist()})
    assert len(days) >= 2
    day = days[0]

    result = runner.invoke(app, ["build", "gold", "--from", day, "--to", day])
    assert result.exit_code == 0, result.output
    assert {r["day"].isoformat() for r in read_table(lake, "gold/daily_volume").to_pylist()} == {day}
    want = [r for r in _rows(full, "gold/daily_volume") if f'"day": "{day}"' in r]
    assert _rows(lake, "gold/daily_volume") == want


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "gold", "--from", "2026-02-30"], "is not a day"),
        (["build", "gold", "--to", "yesterday"], "is not a day"),
        (["build", "gold", "--from", "2026-03-09", "--to", "2026-03-08"], "is after --to"),
        (["build", "silver", "--from", "2026-03-08"], "silver always applies every new bronze version"),
    ],
)
def test_bad_days_are_clear_errors(settings: Settings, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_a_fresh_lake_says_there_is_nothing_to_build(settings: Settings, lake: Lake) -> None:
    for target in ("all", "silver", "gold"):
        result = runner.invoke(app, ["build", target])
        assert result.exit_code == 1, result.output
        assert "no bronze data yet" in " ".join(result.output.split())
    assert lake.tables() == []  # nothing was created on the way


def test_gold_before_silver_says_to_build_silver(settings: Settings, lake: Lake) -> None:
    gd.build(days=1).write(lake)
    result = runner.invoke(app, ["build", "gold"])
    assert result.exit_code == 1
    assert "silver has not been built yet" in " ".join(result.output.split())


def test_sql_on_a_fresh_lake_says_nothing_was_built(settings: Settings, lake: Lake) -> None:
    result = runner.invoke(app, ["sql", "-c", "select * from gold.daily_volume"])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "nothing has been built yet" in output and "beazap build all" in output
    assert "does not exist" not in output

    gd.build(days=1).write(lake)  # bronze only: the hint names the layer still missing
    result = runner.invoke(app, ["sql", "-c", "select count(*) from silver.messages"])
    assert result.exit_code == 1
    assert "silver is not built yet" in " ".join(result.output.split())
    assert runner.invoke(app, ["sql", "-c", "select count(*) from bronze.webhook_events"]).exit_code == 0


def test_sql_keeps_duckdb_errors_for_real_mistakes(settings: Settings, lake: Lake) -> None:
    gd.build(days=1).write(lake)
    assert runner.invoke(app, ["build", "all"]).exit_code == 0
    result = runner.invoke(app, ["sql", "-c", "select * from gold.no_such_table"])
    assert result.exit_code == 1
    assert "no_such_table" in result.output and "nothing has been built" not in result.output
