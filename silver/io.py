"""Delta I/O for silver: read bronze batches (full or by version range), write silver tables.

Writers cast DuckDB results to the contract schemas of :mod:`silver.schema` and commit with an
app transaction (``CommitProperties(app_transactions=…)``) naming the bronze version processed,
so a run that crashed half-way can be retried without appending the same rows twice.
"""

from __future__ import annotations

import itertools
import urllib.parse
from collections.abc import Iterator
from datetime import datetime

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties

from storage.lake import Lake

APP_ID = "beazap-silver"
# Small row groups + time-sorted writes let readers skip row groups by event_at statistics.
WRITER = WriterProperties(max_row_group_size=64 * 1024, compression="ZSTD")
# Files of ~1-2 row groups: an incremental replace rewrites only the few (time-sorted) files holding
# the keys it replaces, so its cost follows the batch rather than the size of the table.
TARGET_FILE_BYTES = 8 * 1024 * 1024


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
        target_file_size=TARGET_FILE_BYTES,
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


def instances_predicate(instances: list[str], column: str = "instance_id") -> str | None:
    """``column in ('i1', …)``; None when empty. The predicate for tables keyed by personal data."""
    return f"{column} in ({sql_list(sorted(set(instances)))})" if instances else None


def rows_of_instances(source: str, instances: list[str], column: str = "instance_id") -> str:
    """SQL selecting the rows of ``source`` that belong to ``instances``."""
    return f"select * from {source} where {instances_predicate(instances, column) or 'false'}"


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


def time_ranges(times: list[datetime], max_ranges: int = 32) -> list[tuple[datetime, datetime]]:
    """Cover the sorted distinct ``times`` with at most ``max_ranges`` closed intervals, cutting at the
    widest gaps, so a replace rewrites the rows around what changed rather than a whole time span."""
    ts = sorted(set(times))
    if not ts:
        return []
    gaps = sorted(range(1, len(ts)), key=lambda i: ts[i] - ts[i - 1], reverse=True)[: max_ranges - 1]
    cuts = [0, *sorted(gaps), len(ts)]
    return [(ts[a], ts[b - 1]) for a, b in itertools.pairwise(cuts)]


def ranges_predicate(column: str, ranges: list[tuple[datetime, datetime]]) -> str | None:
    """``(column >= lo and column <= hi) or …`` (ISO literals both delta-rs and DuckDB read)."""
    if not ranges:
        return None
    return " or ".join(f"({column} >= '{lo.isoformat()}' and {column} <= '{hi.isoformat()}')" for lo, hi in ranges)


def rows_in_ranges(source: str, column: str, ranges: list[tuple[datetime, datetime]]) -> str:
    """SQL selecting the rows of ``source`` inside ``ranges`` (DuckDB pushes the OR of ranges into its
    Parquet reader, which skips row groups outside them)."""
    return f"select * from {source} where {ranges_predicate(column, ranges) or 'false'}"


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
    predicate but not in ``data`` are deleted). Delta records the predicate in the commit's
    ``operationParameters`` (kept in ``_delta_log``): it may only name values that are not
    personal data (instance ids, months, time ranges, message and call ids) — never a phone,
    LID or JID (tables keyed by those replace whole instances: :func:`instances_predicate`).
    Delta "replaceWhere" is used rather than ``merge``
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
        target_file_size=TARGET_FILE_BYTES,
    )
    return data.num_rows


def register(con: duckdb.DuckDBPyConnection, name: str, lake: Lake, table: str, schema: pa.Schema) -> None:
    """Expose a silver table to DuckDB as ``name`` (an empty table of ``schema`` when missing).

    Local lakes are read by DuckDB's own Parquet reader over the table's current files (several
    times faster than a pyarrow dataset for the key scans of incremental runs, with row-group
    pruning on pushed-down filters); S3 lakes, and tables using reader features this reader does
    not apply (deletion vectors, column mapping), go through :meth:`Lake.dataset`."""
    dt = lake.open_or_none(table)
    if dt is None:
        con.register(name, schema.empty_table())
        return
    sql = None if lake.is_s3 else native_scan_sql(dt, schema)
    if sql == "":
        con.register(name, schema.empty_table())
        return
    if sql is None:
        con.register(name, lake.dataset(table, dt))
        return
    con.register(f"{name}__empty", schema.empty_table())
    con.execute(f"create or replace temp view {name} as select * from {name}__empty union all by name {sql}")


def native_scan_sql(dt: DeltaTable, schema: pa.Schema) -> str | None:
    """``read_parquet`` SQL over ``dt``'s current files, partition columns added as constants; None
    when the files alone do not describe the table (reader features) — callers then use pyarrow."""
    protocol = dt.protocol()
    if protocol.min_reader_version > 1 or (protocol.reader_features or []):
        return None
    partitions = list(dt.metadata().partition_columns)
    actions = pa.table(dt.get_add_actions(flatten=True))
    base = urllib.parse.unquote(dt.table_uri.removeprefix("file://")).rstrip("/")
    groups: dict[tuple[str | None, ...], list[str]] = {}
    paths = actions.column("path").to_pylist()
    values = [actions.column(f"partition.{c}").to_pylist() for c in partitions]
    for i, path in enumerate(paths):
        key = tuple(v[i] for v in values)
        groups.setdefault(key, []).append(f"{base}/{urllib.parse.unquote(path)}")
    types = {f.name: f.type for f in schema}
    parts = []
    for key, files in sorted(groups.items(), key=lambda kv: str(kv[0])):
        consts = "".join(
            f", {_sql_const(v, types.get(c, pa.string()))} as {c}" for c, v in zip(partitions, key, strict=True)
        )
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        parts.append(f"select *{consts} from read_parquet([{listed}], union_by_name = true, hive_partitioning = false)")
    return " union all by name ".join(parts)  # "" when the table has no files


def _sql_const(value: str | None, typ: pa.DataType) -> str:
    if value is None:
        return "null"
    quoted = "'" + value.replace("'", "''") + "'"
    return quoted if pa.types.is_string(typ) or pa.types.is_large_string(typ) else f"cast({quoted} as varchar)"
