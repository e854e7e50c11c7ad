"""`beazap sql`: -c, .sql files, the interactive session, table/CSV/Parquet output, clean errors."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from beazap.cli import app
from gold.runner import build_gold
from storage.lake import Lake
from tests.support.gold_fixtures import synthetic

runner = CliRunner()


@pytest.fixture
def built(lake: Lake) -> dict:
    rows = synthetic(lake, instances=["inst-1", "inst-2"], start=datetime(2026, 3, 2, 3, tzinfo=UTC), days=3, per_day=4)
    build_gold(lake, as_of=datetime(2026, 3, 8, tzinfo=UTC))
    return rows


def test_command_table_output(built: dict) -> None:
    result = runner.invoke(app, ["sql", "-c", "select count(*) as n from silver.conversations"])
    assert result.exit_code == 0, result.output
    assert str(len(built["conversations"])) in result.output


def test_csv_to_stdout_and_views_of_every_layer(built: dict) -> None:
    query = "select instance_id, sum(messages) as n from gold.daily_volume group by 1 order by 1; "
    result = runner.invoke(app, ["sql", "-c", query, "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    want = {i: sum(1 for m in built["messages"] if m["instance_id"] == i) for i in ("inst-1", "inst-2")}
    assert {r["instance_id"]: int(r["n"]) for r in rows} == want


def test_parquet_output_from_file(built: dict, tmp_path: Path) -> None:
    script = tmp_path / "q.sql"
    script.write_text("create temp table t as select * from gold.conversation_facts;\nselect conversation_id from t;\n")
    out = tmp_path / "facts.parquet"
    result = runner.invoke(app, ["sql", str(script), "--format", "parquet", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).num_rows == len(built["conversations"])


def test_interactive_session(built: dict) -> None:
    session = ".tables\nselect count(*)\n  as calls from silver.calls;\n.schema gold.heatmap\nselect nope;\n.quit\n"
    result = runner.invoke(app, ["sql"], input=session)
    assert result.exit_code == 0, result.output
    assert "gold.conversation_facts" in result.output and "silver.messages" in result.output
    assert str(len(built["calls"])) in result.output
    assert "inbound_messages" in result.output  # .schema
    assert "nope" in result.output  # the error is shown, the session goes on


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "select * from nowhere"], "nowhere"),
        (["-c", "select 1", "--format", "parquet"], "--output"),
        (["missing.sql"], "no such file"),
    ],
)
def test_errors_exit_nonzero(built: dict, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["sql", *args])
    assert result.exit_code != 0
    assert message in result.output
