"""DuckDB over the lake: one connection with ``bronze.*``, ``silver.*`` and ``gold.*`` views.

Every existing Delta table under the lake root is opened with delta-rs and registered as a view
(``DeltaTable(...).to_pyarrow_dataset()``), so this works offline, with any DuckDB version, and on
S3 lakes (the lake's ``storage_options`` go to delta-rs). Views are snapshots of the table version
current when :func:`connect` (or :func:`refresh`) ran.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from deltalake import DeltaTable

from storage.lake import LAYERS, Lake


def list_tables(lake: Lake) -> list[str]:
    """Every Delta table of the lake as ``layer/name`` (sorted)."""
    found: list[str] = []
    for layer in LAYERS:
        if lake.is_s3:
            found += [f"{layer}/{name}" for name in _s3_child_dirs(lake, layer, with_log=True)]
            continue
        for name in _child_dirs(lake, layer):
            table = f"{layer}/{name}"
            if lake.exists(table):
                found.append(table)
    return sorted(found)


def _child_dirs(lake: Lake, layer: str) -> list[str]:
    if not lake.is_s3:
        base = Path(lake.root) / layer
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    return _s3_child_dirs(lake, layer)


def _s3_child_dirs(lake: Lake, layer: str, with_log: bool = False) -> list[str]:
    """Folder names under ``<root>/<layer>/`` on S3 (ListObjectsV2 with a delimiter, via boto3);
    with ``with_log`` only those holding a ``_delta_log/`` (Delta tables)."""
    import boto3

    opts = lake.storage_options
    client = boto3.client(
        "s3",
        endpoint_url=opts.get("AWS_ENDPOINT_URL"),
        region_name=opts.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=opts.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=opts.get("AWS_SECRET_ACCESS_KEY"),
    )
    bucket, _, prefix = lake.root.removeprefix("s3://").partition("/")
    prefix = f"{prefix.strip('/')}/{layer}/" if prefix.strip("/") else f"{layer}/"
    names: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            name = common["Prefix"][len(prefix) :].strip("/")
            if name and not name.startswith(("_", ".")):
                names.append(name)
    if with_log:
        names = [
            n
            for n in names
            if client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}{n}/_delta_log/", MaxKeys=1).get("KeyCount", 0)
        ]
    return sorted(names)


def view_name(table: str) -> str:
    """``silver/messages`` → ``silver.messages``."""
    layer, name = table.split("/", 1)
    return f'{layer}."{name}"'


def register_table(con: duckdb.DuckDBPyConnection, lake: Lake, table: str, dt: DeltaTable | None = None) -> int:
    """(Re)define the view for one table; returns the Delta version it shows."""
    dt = dt or lake.open(table)
    layer, name = table.split("/", 1)
    dataset = dt.to_pyarrow_dataset()
    tmp = f"__delta_{layer}_{name}"
    con.register(tmp, dataset)
    con.execute(f'create or replace view {layer}."{name}" as select * from "{tmp}"')
    return dt.version()


def refresh(con: duckdb.DuckDBPyConnection, lake: Lake) -> dict[str, int]:
    """(Re)register every table of the lake; returns ``{table: version}``."""
    versions: dict[str, int] = {}
    for layer in LAYERS:
        con.execute(f"create schema if not exists {layer}")
    for table in list_tables(lake):
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
