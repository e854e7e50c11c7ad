"""Find and rewrite one subject's rows in the current version of Delta tables.

Rewrites:
- bronze tables (``webhook_events``, ``quarantine``, ``ops_events``): a ``MERGE`` on their key that
  replaces the affected rows only (the change feed records *updates*, so tailing consumers that read
  inserts do not see new events), then a z-order rewrite of those partitions (an ``OPTIMIZE``
  commit) so the files hold plain ``string`` columns again.
- every other table: the partitions holding affected rows are read, scrubbed and written back with
  ``overwrite`` + ``predicate`` (replace-where), or the whole table when it is not partitioned.

Detection is vectorized over every string column, nested ones included (lists of structs such as
silver's reactions). Old files of the table are handled by :mod:`governance.lake_files`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import write_deltalake

from bronze.schema import OPS_EVENTS, QUARANTINE, WEBHOOK_EVENTS
from governance.subject import ERASED, INSTANCE_COLUMNS, TEXT_KEYS, Scrubber
from storage.lake import Lake
from storage.maintenance import read_table, scan_batches

# Bronze tables are rewritten with MERGE on their key (+ partition column): tailing consumers read
# the change feed's inserts only, so an erasure never looks like new data to them.
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    WEBHOOK_EVENTS: ("receipt_id", "received_date"),
    QUARANTINE: ("receipt_id", "received_date"),
    OPS_EVENTS: ("action_id", "occurred_date"),
}


@dataclass
class TableScrub:
    """What erasure changed in one table."""

    table: str
    rows: int = 0
    partitions: list[str] = field(default_factory=list)
    version: int | None = None


def is_view_type(t: pa.DataType) -> bool:
    return pa.types.is_string_view(t) or pa.types.is_binary_view(t)


def is_text_type(t: pa.DataType) -> bool:
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or is_view_type(t)
    )


def _string_columns(schema: pa.Schema) -> list[str]:
    return [
        f.name
        for f in schema
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type)
    ]


def _binary_columns(schema: pa.Schema) -> list[str]:
    return [
        f.name
        for f in schema
        if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) or pa.types.is_binary_view(f.type)
    ]


def _nested_columns(schema: pa.Schema) -> list[str]:
    """Columns of nested types (list / struct / map) that hold strings somewhere inside."""
    return [f.name for f in schema if _is_nested(f.type) and _holds_text(f.type)]


def _is_nested(t: pa.DataType) -> bool:
    return pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t)


def _holds_text(t: pa.DataType) -> bool:
    if is_text_type(t):
        return True
    if pa.types.is_struct(t):
        return any(_holds_text(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_map(t):
        return _holds_text(t.key_type) or _holds_text(t.item_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _holds_text(t.value_type)
    return False


def _false(n: int) -> pa.BooleanArray:
    return pa.array([False] * n, pa.bool_())


def _array_mask(arr: pa.Array, needles: list[str]) -> pa.BooleanArray:
    """Per element: does it (or anything nested in it) contain one of ``needles``?"""
    mask = _false(len(arr))
    t = arr.type
    if is_text_type(t):
        values = arr.cast(pa.large_binary()) if is_view_type(t) else arr
        for needle in needles:
            mask = pc.or_(mask, pc.fill_null(pc.match_substring(values, needle), False))
    elif pa.types.is_struct(t):
        for i in range(t.num_fields):
            mask = pc.or_(mask, _array_mask(pc.struct_field(arr, [i]), needles))
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t):
        flat = (
            pa.StructArray.from_arrays([arr.keys, arr.items], names=["key", "value"])
            if pa.types.is_map(t)
            else arr.flatten()
        )
        inner = _array_mask(flat, needles)
        if pc.any(inner).as_py():
            parents = pc.unique(pc.filter(pc.list_parent_indices(arr), inner))
            positions = pa.array(range(len(arr)), pa.int64())
            mask = pc.or_(mask, pc.is_in(positions, value_set=parents.cast(pa.int64())))
    return mask


def affected_mask(data: pa.Table, scrubber: Scrubber) -> pa.BooleanArray:
    """Rows of ``data`` that hold an identifier (in any string, nested or not) or a mapped old value."""
    mask = _false(data.num_rows)
    if data.num_rows == 0:
        return mask
    mapped = pa.array(list(scrubber.value_map), pa.string()) if scrubber.value_map else None
    for name in data.column_names:
        t = data.schema.field(name).type
        if not _holds_text(t):
            continue
        column = data.column(name).combine_chunks()
        mask = pc.or_(mask, _array_mask(column, scrubber.subject.needles))
        if mapped is not None and (pa.types.is_string(t) or pa.types.is_large_string(t)):
            mask = pc.or_(mask, pc.fill_null(pc.is_in(column, value_set=mapped), False))
    if scrubber.instances is not None:
        for column_name in INSTANCE_COLUMNS:
            if column_name in data.column_names:
                scope = pa.array(sorted(scrubber.instances), pa.string())
                mask = pc.and_(mask, pc.fill_null(pc.is_in(data.column(column_name), value_set=scope), False))
                break
    return mask


def find_affected(lake: Lake, table: str, scrubber: Scrubber) -> pa.Table:
    """The rows of ``table`` that mention the subject (vectorized scan over every string, nested too)."""
    schema = lake.dataset(table).schema
    parts = []
    for batch in scan_batches(lake, table):
        data = pa.Table.from_batches([batch])
        mask = affected_mask(data, scrubber)
        if pc.any(mask).as_py():
            parts.append(data.filter(mask))
    return pa.concat_tables(parts) if parts else schema.empty_table()


def _row_affected(
    row: dict[str, Any],
    scrubber: Scrubber,
    strings: list[str],
    binaries: list[str],
    nested: list[str] = (),  # type: ignore[assignment]
) -> bool:
    if not scrubber.in_scope(row):
        return False
    for name in nested:
        value = row.get(name)
        if value is not None and scrubber.document(value, erase_text=False) != value:
            return True
    for name in strings:
        value = row.get(name)
        if value is not None and (value in scrubber.value_map or scrubber.matches(value)):
            return True
    for name in binaries:
        value = row.get(name)
        if value is not None and scrubber.matches(value.decode("utf-8", "replace")):
            return True
    return False


def scrub_rows(rows: list[dict[str, Any]], schema: pa.Schema, scrubber: Scrubber) -> tuple[list[dict[str, Any]], int]:
    """Scrub affected rows in place; returns the rows and how many were affected."""
    strings = _string_columns(schema)
    binaries = _binary_columns(schema)
    nested = _nested_columns(schema)
    changed = 0
    for row in rows:
        if not _row_affected(row, scrubber, strings, binaries, nested):
            continue
        changed += 1
        for name in nested:
            if row.get(name) is not None:
                row[name] = scrubber.document(row[name], erase_text=True)
        for name in strings:
            value = row.get(name)
            if value is None:
                continue
            lowered = name.lower()
            if lowered in TEXT_KEYS:
                row[name] = ERASED if value else value
            elif lowered in ("payload", "details") or value[:1] in ("{", "["):
                row[name] = scrubber.json_text(value, erase_text=True)
            else:
                row[name] = scrubber.text(value, name)
        for name in binaries:
            value = row.get(name)
            if value is not None:
                scrubbed = scrubber.json_text(value.decode("utf-8", "replace"), erase_text=True)
                row[name] = (scrubbed or "").encode("utf-8")
        if "payload_hash" in row and "payload" in row and row["payload"] is not None:
            row["payload_hash"] = hashlib.sha256(row["payload"].encode("utf-8")).hexdigest()
    return rows, changed


def _partition_predicate(schema: pa.Schema, column: str, values: list[Any]) -> str:
    quoted = ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def scrub_table(lake: Lake, table: str, scrubber: Scrubber) -> TableScrub:
    """Rewrite the affected rows of ``table`` (any schema) with ``scrubber``; one Delta commit."""
    result = TableScrub(table=table)
    dt = lake.open_or_none(table)
    if dt is None:
        return result
    dataset = lake.dataset(table, dt)
    schema = dataset.schema
    hits = find_affected(lake, table, scrubber)
    if hits.num_rows == 0:
        return result
    if table in MERGE_KEYS:
        return _merge_rows(lake, dt, table, hits, scrubber, result)
    partition_cols = list(dt.metadata().partition_columns)
    if partition_cols:
        col = partition_cols[0]
        values = sorted(set(hits.column(col).to_pylist()), key=str)
        part_filter = pc.is_in(ds.field(col), value_set=pa.array(values, schema.field(col).type))
        current = read_table(lake, table, filter=part_filter)
        predicate = _partition_predicate(schema, col, values)
        result.partitions = [str(v) for v in values]
    else:
        current = read_table(lake, table)
        predicate = None
    rows, changed = scrub_rows(current.to_pylist(), schema, scrubber)
    if changed == 0:
        return result
    new = pa.Table.from_pylist(rows, schema=schema)
    write_deltalake(
        lake.uri(table),
        new,
        mode="overwrite",
        predicate=predicate,
        partition_by=partition_cols or None,
        storage_options=lake.storage_options or None,
    )
    result.rows = changed
    result.version = lake.open(table).version()
    return result


def _merge_rows(lake: Lake, dt: Any, table: str, hits: pa.Table, scrubber: Scrubber, result: TableScrub) -> TableScrub:
    """Bronze tables: MERGE the scrubbed rows by key, so the change feed shows updates, not inserts."""
    schema = hits.schema
    old_hashes = hits.column("payload_hash").to_pylist() if "payload_hash" in schema.names else None
    originals = hits.to_pylist()
    rows, _changed = scrub_rows([dict(r) for r in originals], schema, scrubber)
    affected = [i for i, row in enumerate(rows) if row != originals[i]]
    if not affected:
        return result
    rows = [rows[i] for i in affected]
    if old_hashes is not None:
        for i, row in zip(affected, rows, strict=True):
            scrubber.value_map[old_hashes[i]] = row["payload_hash"]
    keys = MERGE_KEYS[table]
    source = pa.Table.from_pylist(rows, schema=schema)
    updates = {c: f"s.{c}" for c in schema.names if c not in keys}
    (
        dt.merge(
            source,
            predicate=" AND ".join(f"t.{k} = s.{k}" for k in keys),
            source_alias="s",
            target_alias="t",
            streamed_exec=False,
        )
        .when_matched_update(updates)
        .execute()
    )
    result.rows = len(rows)
    partition_cols = list(dt.metadata().partition_columns)
    if partition_cols:
        result.partitions = sorted({str(r[partition_cols[0]]) for r in rows})
    _normalize_files(lake, table, keys[0], partition_cols, result.partitions)
    result.version = lake.open(table).version()
    return result


def _normalize_files(lake: Lake, table: str, sort_column: str, partition_cols: list[str], values: list[str]) -> None:
    """Rewrite the merged partitions with plain Arrow types (an OPTIMIZE commit, no data change).

    ``MERGE`` writes strings as ``string_view``; readers that push filters into pyarrow datasets
    over mixed files then fail (``no kernel matching input types (string, string_view)``). A z-order
    rewrite of the touched partitions writes plain ``string`` again, even for single-file partitions.
    """
    dt = lake.open(table)
    filters = [(partition_cols[0], "in", values)] if partition_cols and values else None
    dt.optimize.z_order([sort_column], partition_filters=filters)


def discover_lids(lake: Lake, scrubber: Scrubber) -> None:
    """Add to the subject every LID seen next to its phone in bronze payloads or silver contacts."""
    subject = scrubber.subject
    for table, phone_col, lid_col in (
        ("silver/contacts", "phone_e164", "lid"),
        ("silver/messages", "contact_phone", "contact_lid"),
    ):
        dt = lake.open_or_none(table)
        if dt is None:
            continue
        dataset = lake.dataset(table, dt)
        names = set(dataset.schema.names)
        if not {phone_col, lid_col} <= names:
            continue
        found = read_table(lake, table, columns=[phone_col, lid_col], filter=ds.field(phone_col) == subject.phone_e164)
        subject.add_lids(found.column(lid_col).to_pylist())
    dt = lake.open_or_none(WEBHOOK_EVENTS)
    if dt is not None:
        expr: ds.Expression | None = None
        for needle in sorted(subject.variants):
            term = pc.match_substring(ds.field("payload"), needle)
            expr = term if expr is None else expr | term
        hits = read_table(lake, WEBHOOK_EVENTS, columns=["payload"], filter=expr)
        for payload in hits.column("payload").to_pylist():
            subject.add_lids(f"{lid}@lid" for lid in scrubber.lids_near_phone(payload))
    scrubber.rebuild()


def map_conversations(lake: Lake, scrubber: Scrubber, table: str = "silver/conversations") -> int:
    """Register new ids for the subject's conversations (their contact key becomes the pseudonym)."""
    dt = lake.open_or_none(table)
    if dt is None:
        return 0
    rows = read_table(lake, table, columns=["conversation_id", "instance_id", "contact_key", "opening_message_id"])
    count = 0
    for row in rows.to_pylist():
        if row["contact_key"] and scrubber.matches(row["contact_key"]) and scrubber.in_scope(row):
            scrubber.map_conversation(row["instance_id"], row["conversation_id"], row["opening_message_id"] or "")
            count += 1
    return count
