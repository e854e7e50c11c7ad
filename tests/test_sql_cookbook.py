"""Every cookbook query in docs/analysts.md runs against a real lake and returns rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gold.runner import build_gold
from storage.duck import connect
from storage.lake import Lake
from tests.support.gold_fixtures import synthetic

DOC = Path(__file__).resolve().parents[1] / "docs" / "analysts.md"


def cookbook() -> list[tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8").split("## Cookbook", 1)[1].split("## Definitions", 1)[0]
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    out = []
    for section in sections:
        title = section.splitlines()[0].strip()
        match = re.search(r"```sql\n(.*?)```", section, flags=re.S)
        assert match, title
        out.append((title, match.group(1)))
    return out


def test_cookbook_has_at_least_ten_questions() -> None:
    assert len(cookbook()) >= 10


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    lake = Lake(root=str(tmp_path_factory.mktemp("cookbook") / "lake"))
    synthetic(
        lake,
        instances=["inst-1", "inst-2"],
        start=datetime(2026, 3, 2, 3, tzinfo=UTC),
        days=10,
        per_day=10,
        as_of=datetime(2026, 3, 11, 18, tzinfo=UTC),
    )
    build_gold(lake, as_of=datetime(2026, 3, 11, 18, tzinfo=UTC))
    return lake


@pytest.fixture(scope="module")
def con(lake: Lake):
    connection = connect(lake)
    yield connection
    connection.close()


@pytest.mark.parametrize(("title", "sql"), cookbook(), ids=[t for t, _ in cookbook()])
def test_cookbook_query_runs(con, title: str, sql: str) -> None:
    rows = con.sql(sql).fetchall()
    assert rows, f"no rows for: {title}"


def test_polars_reads_gold_as_the_docs_show(lake: Lake, con) -> None:
    """docs/analysts.md: `pl.scan_delta(<lake>/gold/daily_volume)` sees the same rows DuckDB does."""
    import polars as pl

    frame = pl.scan_delta(lake.uri("gold/daily_volume")).select(pl.len(), pl.col("messages").sum()).collect()
    duck = con.execute("select count(*), sum(messages) from gold.daily_volume").fetchone()
    assert frame.row(0) == tuple(duck) and duck[0] > 0
