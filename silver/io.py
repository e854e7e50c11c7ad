"""Delta I/O for silver: read bronze batches (full or by version range), write silver tables.

Writers cast DuckDB results to the contract schemas of :mod:`silver.schema` and commit with an
app transaction (``CommitProperties(app_transactions=…)``) naming the bronze version processed,
so a run that crashed half-way can be retried without appending the same rows twice.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties

from storage.lake import Lake

APP_ID = "beazap-silver"
# Small row groups + time-sorted writes let readers skip row groups by event_at statistics.
WRITER = WriterProperties(max_row_group_size=64 * 1024, compression="ZSTD")


def ensure(lake: Lake, table: str, schema: pa.Schema, partitions: list[str] | None = None) -> DeltaTable:
    """Open ``table``, creating it empty with the contract schema when missing."""
    return lake.create(table, schema, partition_by=partitions)


def applied_version(dt: DeltaTable, app_id: str = APP_ID) -> int:
    """Highest bronze version already committed into ``dt`` by silver (-1 when none)."""
    version = dt.transaction_version(app_id)
    return -1 if version is None else int(version)


def commit_props(version: int, app_id: str = APP_ID) -> CommitProperties:
    return CommitProperties(app_transactions=[Transaction(app_id, version)], max_commit_retries=20)


def _cast_batches(reader: pa.RecordBatchReader, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for batch in reader:
        table = pa.Table.from_batches([batch])
        cols = [
            table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
            for f in schema
        ]
        yield from pa.Table.from_arrays(cols, schema=schema).to_batches()


def relation_reader(rel: duckdb.DuckDBPyRelation, schema: pa.Schema, batch_rows: int = 250_000) -> pa.RecordBatchReader:
    """Stream a DuckDB relation as record batches cast to ``schema``."""
    reader = rel.to_arrow_reader(batch_rows)
    return pa.RecordBatchReader.from_batches(schema, _cast_batches(reader, schema))


def relation_table(rel: duckdb.DuckDBPyRelation, schema: pa.Schema) -> pa.Table:
    return relation_reader(rel, schema).read_all()


def overwrite(
    lake: Lake,
    table: str,
    rel: duckdb.DuckDBPyRelation,
    schema: pa.Schema,
    partitions: list[str] | None,
    version: int,
) -> None:
    """Replace the whole table with ``rel`` (full rebuild)."""
    ensure(lake, table, schema, partitions)
    lake.write(
        table,
        relation_reader(rel, schema),
        mode="overwrite",
        partition_by=partitions,
        schema_mode="overwrite",
        commit_properties=commit_props(version),
        writer_properties=WRITER,
    )


def append(
    lake: Lake, table: str, data: pa.Table, schema: pa.Schema, partitions: list[str] | None, version: int
) -> int:
    """Append rows once per bronze version (skipped when this version was already applied)."""
    dt = ensure(lake, table, schema, partitions)
    if applied_version(dt) >= version or data.num_rows == 0:
        return 0
    lake.write(table, data, mode="append", partition_by=partitions, commit_properties=commit_props(version))
    return data.num_rows


def sql_list(values: list[str]) -> str:
    """Quoted SQL list body: ``'a', 'b'`` (single quotes doubled)."""
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def keys_predicate(pairs: list[tuple[str, str]], scope_col: str, key_col: str) -> str | None:
    """``(scope = 'i1' and key in (...)) or …`` for (scope, key) pairs; None when empty."""
    by_scope: dict[str, list[str]] = {}
    for scope, key in pairs:
        by_scope.setdefault(scope, []).append(key)
    if not by_scope:
        return None
    return " or ".join(
        f"({scope_col} = '{scope.replace(chr(39), chr(39) * 2)}' and {key_col} in ({sql_list(sorted(set(keys)))}))"
        for scope, keys in sorted(by_scope.items())
    )


def replace_where(
    lake: Lake,
    table: str,
    data: pa.Table,
    schema: pa.Schema,
    partitions: list[str] | None,
    predicate: str | None,
    version: int,
) -> int:
    """Upsert by replacement: delete the rows matching ``predicate`` and write ``data`` in one commit.

    ``predicate`` names the keys being replaced (every row of ``data`` must satisfy it; keys in the
    predicate but not in ``data`` are deleted). Delta "replaceWhere" is used rather than ``merge``
    because delta-rs merge writes ``string_view`` Parquet columns that pyarrow datasets cannot filter.
    """
    ensure(lake, table, schema, partitions)
    if predicate is None:
        return 0
    lake.write(
        table,
        data,
        mode="overwrite",
        predicate=predicate,
        partition_by=partitions,
        commit_properties=commit_props(version),
        writer_properties=WRITER,
    )
    return data.num_rows


def register(con: duckdb.DuckDBPyConnection, name: str, lake: Lake, table: str, schema: pa.Schema) -> None:
    """Expose a silver table to DuckDB as ``name`` (an empty table of ``schema`` when missing)."""
    dt = lake.open_or_none(table)
    if dt is None:
        con.register(name, schema.empty_table())
    else:
        con.register(name, dt.to_pyarrow_dataset())
