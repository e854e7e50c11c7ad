"""Every cookbook query in docs/analysts.md runs against a real lake and returns rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gold.fixtures import synthetic
from gold.runner import build_gold
from storage.duck import connect
from storage.lake import Lake

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
def con(tmp_path_factory: pytest.TempPathFactory):
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
    connection = connect(lake)
    yield connection
    connection.close()


@pytest.mark.parametrize(("title", "sql"), cookbook(), ids=[t for t, _ in cookbook()])
def test_cookbook_query_runs(con, title: str, sql: str) -> None:
    rows = con.sql(sql).fetchall()
    assert rows, f"no rows for: {title}"
