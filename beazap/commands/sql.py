"""``beazap sql``: DuckDB over the lake, with views ``bronze.*``, ``silver.*`` and ``gold.*`` ready.

Without arguments it opens an interactive session (statements end with ``;``; ``.tables``,
``.help``, ``.quit``). ``-c "…"`` runs a query, a ``.sql`` file runs its statements; the last
statement's result is printed as a table, or written as CSV / Parquet with ``--format`` and
``--output``.
"""

from __future__ import annotations

import contextlib
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from beazap.commands.common import console, fail, setup

HELP = """Statements end with ';'. Commands:
  .tables            list the lake's tables (schema.table)
  .schema TABLE      columns of a table, e.g. .schema gold.daily_volume
  .refresh           re-read the lake (new Delta versions)
  .help              this help
  .quit              leave (also Ctrl-D)"""


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    parquet = "parquet"


def _print_table(relation: Any, max_rows: int) -> None:
    from rich.table import Table

    columns = relation.columns
    rows = relation.limit(max_rows + 1).fetchall()
    table = Table(*columns, show_lines=False, header_style="bold")
    for row in rows[:max_rows]:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    console.print(table)
    shown = min(len(rows), max_rows)
    more = " (more rows not shown; use --max-rows or --format csv)" if len(rows) > max_rows else ""
    console.print(f"[dim]{shown} row(s){more}[/]")


def emit(relation: Any, fmt: OutputFormat, output: Path | None, max_rows: int) -> None:
    """Print or write the result of the last statement."""
    if relation is None:
        return
    if fmt is OutputFormat.parquet:
        if output is None:
            fail("--format parquet needs --output FILE")
        relation.write_parquet(str(output))
        console.print(f"wrote {output}")
        return
    if fmt is OutputFormat.csv:
        if output is not None:
            relation.write_csv(str(output), header=True)
            console.print(f"wrote {output}")
            return
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(relation.columns)
        writer.writerows(relation.fetchall())
        sys.stdout.flush()
        return
    if output is not None:
        fail("--output is for --format csv or parquet")
    _print_table(relation, max_rows)


def run_statements(con: Any, text: str) -> Any:
    """Run one or more statements; returns the relation of the last one (or None)."""
    import duckdb

    statements = list(duckdb.extract_statements(text))
    relation = None
    for statement in statements:
        relation = con.sql(statement.query)
    return relation


NOTHING_BUILT = (
    "nothing has been built yet: the lake at {root} has no tables. Receive webhooks with `beazap serve` or "
    "load sample data with `beazap simulate` / `beazap demo`, then run `beazap build all`."
)
LAYER_NOT_BUILT = "{layers} not built yet: run `beazap build all` (or `beazap build silver` for silver only)."


def not_built_hint(con: Any, lake: Any, text: str, exc: Exception) -> str | None:
    """A newcomer's explanation for a missing table when the layer it names was never built."""
    import duckdb

    if not isinstance(exc, duckdb.CatalogException):
        return None
    present = {
        r[0]
        for r in con.execute(
            "select distinct schema_name from duckdb_views() where schema_name in ('bronze', 'silver', 'gold')"
        ).fetchall()
    }
    if not present:
        return NOTHING_BUILT.format(root=lake.root)
    named = {m.lower() for m in re.findall(r"\b(silver|gold)\s*\.", text, flags=re.IGNORECASE)}
    missing = sorted(named - present)
    if missing:
        return LAYER_NOT_BUILT.format(layers=" and ".join(missing) + (" are" if len(missing) > 1 else " is"))
    return None


def _tables(con: Any) -> None:
    rows = con.execute(
        "select schema_name || '.' || view_name from duckdb_views() "
        "where schema_name in ('bronze', 'silver', 'gold') and not internal order by 1"
    ).fetchall()
    for (name,) in rows:
        console.print(name)
    if not rows:
        console.print("[yellow]the lake has no tables yet[/]")


def repl(con: Any, lake: Any, max_rows: int) -> None:
    """A small interactive loop (readline history when available)."""
    import duckdb

    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history)
    console.print(f"BeaZap SQL over {lake.root} — DuckDB {duckdb.__version__}. Type .help for help.")
    if not lake.tables():
        console.print(f"[yellow]{NOTHING_BUILT.format(root=lake.root)}[/]")
    buffer: list[str] = []
    while True:
        try:
            line = input("beazap> " if not buffer else "   ...> ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        stripped = line.strip()
        if not buffer and stripped.startswith("."):
            command, _, arg = stripped.partition(" ")
            if command in (".quit", ".exit"):
                return
            if command == ".help":
                console.print(HELP)
            elif command == ".tables":
                _tables(con)
            elif command == ".schema" and arg:
                _safe(lambda a=arg: _print_table(con.sql(f"describe {a}"), 500))
            elif command == ".refresh":
                from storage.duck import refresh

                refresh(con, lake)
                console.print("lake re-read")
            else:
                console.print(f"[red]unknown command {command}[/]; .help lists them")
            continue
        buffer.append(line)
        if stripped.endswith(";"):
            text = "\n".join(buffer)
            buffer = []
            _safe(lambda t=text: emit(run_statements(con, t), OutputFormat.table, None, max_rows), con, lake, text)


def _safe(action: Any, con: Any = None, lake: Any = None, text: str = "") -> None:
    import duckdb

    try:
        action()
    except duckdb.Error as exc:
        hint = not_built_hint(con, lake, text, exc) if con is not None else None
        console.print(f"[red]{hint or exc}[/]")


def register(app: typer.Typer) -> None:
    @app.command("sql")
    def sql(
        file: Path | None = typer.Argument(None, help="A .sql file to run (its last statement's result is shown)."),
        command: str | None = typer.Option(None, "-c", "--command", help="SQL to run instead of a session."),
        fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table, csv or parquet."),
        output: Path | None = typer.Option(None, "--output", "-o", help="Write the result here (csv/parquet)."),
        max_rows: int = typer.Option(100, min=1, help="Rows shown in table format."),
    ) -> None:
        """Query the lake with DuckDB: views bronze.*, silver.*, gold.* are already defined."""
        setup()
        import duckdb

        from core.settings import get_settings
        from storage.duck import connect
        from storage.lake import Lake

        lake = Lake.from_settings(get_settings())
        con = connect(lake)
        if command is not None and file is not None:
            fail("give either -c or a file, not both")
        text = command
        if file is not None:
            if not file.is_file():
                fail(f"no such file: {file}")
            text = file.read_text(encoding="utf-8")
        if text is None:
            if fmt is not OutputFormat.table or output is not None:
                fail("--format/--output need -c or a file")
            repl(con, lake, max_rows)
            return
        try:
            emit(run_statements(con, text), fmt, output, max_rows)
        except duckdb.Error as exc:
            fail(not_built_hint(con, lake, text, exc) or str(exc).splitlines()[0])
