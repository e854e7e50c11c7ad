"""DuckDB over the lake: one connection with ``bronze.*``, ``silver.*`` and ``gold.*`` views.

Every existing Delta table under the lake root (:meth:`Lake.tables`) is registered as a view over
:meth:`Lake.dataset`, so this works offline, with any DuckDB version, and on S3 lakes. Views are
snapshots of the table version current when :func:`connect` (or :func:`refresh`) ran.
"""

from __future__ import annotations

import duckdb
from deltalake import DeltaTable

from storage.lake import LAYERS, Lake


def view_name(table: str) -> str:
    """``silver/messages`` → ``silver.messages``."""
    layer, name = table.split("/", 1)
    return f'{layer}."{name}"'


def register_table(con: duckdb.DuckDBPyConnection, lake: Lake, table: str, dt: DeltaTable | None = None) -> int:
    """(Re)define the view for one table; returns the Delta version it shows."""
    dt = dt or lake.open(table)
    layer, name = table.split("/", 1)
    dataset = lake.dataset(table, dt)
    tmp = f"__delta_{layer}_{name}"
    con.register(tmp, dataset)
    con.execute(f'create or replace view {layer}."{name}" as select * from "{tmp}"')
    return dt.version()


def refresh(con: duckdb.DuckDBPyConnection, lake: Lake) -> dict[str, int]:
    """(Re)register every table of the lake; returns ``{table: version}``."""
    versions: dict[str, int] = {}
    for layer in LAYERS:
        con.execute(f"create schema if not exists {layer}")
    for table in lake.tables():
        versions[table] = register_table(con, lake, table)
    return versions


def connect(lake: Lake, *, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views over every Delta table of ``lake`` (UTC session)."""
    con = duckdb.connect(":memory:")
    con.execute("set TimeZone = 'UTC'")
    if threads:
        con.execute(f"set threads = {int(threads)}")
    refresh(con, lake)
    return con
