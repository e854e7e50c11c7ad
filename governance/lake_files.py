"""Every file of a Delta table, old versions included: find the subject, and remove it from them.

Vacuum alone is not enough for erasure: ``_change_data`` files survive it, and the log's JSON
commits and checkpoints keep per-file column statistics (min/max values) and commit metadata
(``commitInfo``: the operation's predicate) that can hold the very values erased.
:func:`scan_table_files` reads all of it — current data, files only old versions reference, change
data, commits, checkpoints, any other file; :func:`purge_unreferenced` is the targeted vacuum.

A tenant's verification (``owned_only``) reports only what can be attributed to its instances:
data rows by their instance column, log and checkpoint entries by the file they describe (its
instance partition, or instance statistics whose min and max are one of the tenant's instances).
Entries of files mixing tenants and commit metadata cannot be attributed, so they never answer a
tenant — otherwise the verification would tell one tenant that another one has the phone;
operator-wide verification (the CLI) checks everything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from governance.lake_scrub import is_text_type, is_view_type
from governance.subject import ERASED, INSTANCE_COLUMNS, Scrubber
from storage.lake import Lake


@dataclass(frozen=True)
class FileHit:
    path: str
    kind: str  # data | change_data | log | checkpoint | other
    referenced: bool


def _file_kind(rel: str) -> str:
    if rel.startswith("_delta_log/"):
        return "checkpoint" if rel.endswith(".parquet") else "log"
    if rel.startswith("_change_data/"):
        return "change_data"
    return "data" if rel.endswith(".parquet") else "other"


def _parquet_strings(table: pa.Table) -> list[pa.Array]:
    arrays: list[pa.Array] = []
    pending = [table.column(i).combine_chunks() for i in range(table.num_columns)]
    while pending:
        arr = pending.pop()
        t = arr.type
        if pa.types.is_struct(t):
            pending.extend(arr.field(i) for i in range(t.num_fields))
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            pending.append(arr.flatten())
        elif pa.types.is_map(t):
            pending.append(arr.keys)
            pending.append(arr.items)
        elif is_text_type(t):
            arrays.append(arr.cast(pa.large_binary()) if is_view_type(t) else arr)
    return arrays


def _scope_rows(table: pa.Table, scrubber: Scrubber) -> pa.Table:
    for column in INSTANCE_COLUMNS:
        if column in table.column_names and pa.types.is_string(table.schema.field(column).type):
            mask = pc.is_in(table.column(column), value_set=pa.array(sorted(scrubber.instances or ()), pa.string()))
            return table.filter(mask)
    return table


def _referenced_paths(dt: Any) -> set[str]:
    if dt is None:
        return set()
    paths = pa.table(dt.get_add_actions()).column("path").to_pylist()
    return {unquote(p) for p in paths} | set(paths)


def _bytes_hit(data: bytes, scrubber: Scrubber) -> bool:
    return scrubber.matches(data.decode("utf-8", "replace"))


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, list):  # a Parquet map read back as (key, value) pairs
        return {k: v for k, v in value if isinstance(k, str)}
    if isinstance(value, str):
        try:
            loaded = json.loads(value)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}


def _owned(action: dict[str, Any], instances: frozenset[str]) -> bool:
    """Whether a log action (add/remove/cdc) describes a file holding only ``instances``' rows."""
    for kind in ("add", "remove", "cdc"):
        body = action.get(kind)
        if not isinstance(body, dict):
            continue
        partitions = _as_dict(body.get("partitionValues"))
        stats = _as_dict(body.get("stats"))
        for column in INSTANCE_COLUMNS:
            if partitions.get(column) is not None:
                return partitions[column] in instances
            low = _as_dict(stats.get("minValues")).get(column)
            high = _as_dict(stats.get("maxValues")).get(column)
            if low is not None and low == high:
                return low in instances
    return False


def _log_hit(data: bytes, scrubber: Scrubber, owned_only: bool) -> bool:
    if not owned_only:
        return _bytes_hit(data, scrubber)
    for line in data.decode("utf-8", "replace").splitlines():
        if scrubber.matches(line):
            try:
                action = json.loads(line)
            except ValueError:
                continue
            if isinstance(action, dict) and _owned(action, scrubber.instances or frozenset()):
                return True
    return False


def _checkpoint_hit(parsed: pa.Table, scrubber: Scrubber) -> bool:
    for row in parsed.to_pylist():
        if scrubber.matches(json.dumps(row, default=str, ensure_ascii=False)) and _owned(
            row, scrubber.instances or frozenset()
        ):
            return True
    return False


def scan_table_files(lake: Lake, table: str, scrubber: Scrubber, *, owned_only: bool = False) -> list[FileHit]:
    """Every file under ``table``'s folder that still contains one of the subject's identifiers.

    ``owned_only`` (a tenant's verification, ``scrubber.instances`` set): only what is attributable
    to those instances counts (see the module docstring)."""
    owned_only = owned_only and scrubber.instances is not None
    fs, base = lake.filesystem(table)
    try:
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except OSError:
        return []
    dt = lake.open_or_none(table)
    referenced = _referenced_paths(dt)
    hits: list[FileHit] = []
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(base) :].lstrip("/")
        kind = _file_kind(rel)
        with fs.open_input_file(info.path) as handle:
            data = handle.read()
        found = False
        if owned_only and kind == "log":
            found = _log_hit(data, scrubber, owned_only)
        elif rel.endswith(".parquet"):
            try:
                parsed = pq.read_table(pa.BufferReader(data))
            except (pa.ArrowInvalid, OSError):
                found = _bytes_hit(data, scrubber) and not owned_only
            else:
                if owned_only and kind == "checkpoint":
                    if _checkpoint_hit(parsed, scrubber):
                        hits.append(FileHit(path=rel, kind=kind, referenced=rel in referenced))
                    continue
                if scrubber.instances is not None:
                    parsed = _scope_rows(parsed, scrubber)
                needles = scrubber.subject.needles + (["@lid"] if scrubber.lid_hashes else [])
                for arr in _parquet_strings(parsed):
                    for needle in needles:
                        if pc.any(pc.match_substring(arr, needle)).as_py():
                            candidates = pc.filter(arr, pc.match_substring(arr, needle)).to_pylist()
                            if any(_bytes_hit(v if isinstance(v, bytes) else v.encode(), scrubber) for v in candidates):
                                found = True
                                break
                    if found:
                        break
        else:
            found = _bytes_hit(data, scrubber) and not owned_only
        if found:
            hits.append(FileHit(path=rel, kind=kind, referenced=rel in referenced))
    return hits


def purge_unreferenced(lake: Lake, table: str, hits: list[FileHit], scrubber: Scrubber) -> list[str]:
    """Remove the subject from files no current version needs; returns what was changed.

    - data and change-data files that only old versions reference are deleted (a targeted vacuum:
      other old files, and time travel over them, stay);
    - JSON commits keep their actions but lose the column statistics that held identifiers
      (statistics are optional; the log stays a complete chain for change-feed readers), and their
      commit metadata (``commitInfo``, e.g. an operation's predicate) has the identifiers replaced;
    - checkpoints older than the latest are deleted (the latest, written after the rewrite, is
      clean and describes the table on its own).
    Call :func:`storage.maintenance.checkpoint` at the latest version first.
    """
    fs, base = lake.filesystem(table)
    latest_checkpoint = _latest_checkpoint_version(fs, base)
    changed: list[str] = []
    for hit in hits:
        path = f"{base}/{hit.path}"
        if hit.kind == "log":
            if _scrub_log(fs, path, scrubber):
                changed.append(hit.path)
            continue
        if hit.referenced:
            continue
        if hit.kind == "checkpoint":
            version = _log_version(hit.path)
            if latest_checkpoint is None or version is None or version >= latest_checkpoint:
                continue
        fs.delete_file(path)
        changed.append(hit.path)
    return changed


def _scrub_value(value: Any, scrubber: Scrubber) -> Any:
    if isinstance(value, str):
        if not scrubber.matches(value):
            return value
        scrubbed = scrubber.text(value)
        return ERASED if scrubbed is None or scrubber.matches(scrubbed) else scrubbed
    if isinstance(value, dict):
        return {k: _scrub_value(v, scrubber) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_value(v, scrubber) for v in value]
    return value


def _scrub_log(fs: pafs.FileSystem, path: str, scrubber: Scrubber) -> bool:
    """Remove the subject from one log file: drop ``stats`` of file actions that mention it and
    replace it in commit metadata (``commitInfo``)."""
    with fs.open_input_file(path) as handle:
        lines = handle.read().decode("utf-8").splitlines()
    out: list[str] = []
    changed = False
    for line in lines:
        if line.strip() and scrubber.matches(line):
            try:
                action = json.loads(line)
            except ValueError:
                out.append(line)
                continue
            for kind in ("add", "remove", "cdc"):
                body = action.get(kind)
                if isinstance(body, dict) and "stats" in body and scrubber.matches(str(body["stats"])):
                    body.pop("stats")
                    changed = True
            if "commitInfo" in action:
                scrubbed = _scrub_value(action["commitInfo"], scrubber)
                changed = changed or scrubbed != action["commitInfo"]
                action["commitInfo"] = scrubbed
            line = json.dumps(action, separators=(",", ":"))
        out.append(line)
    if changed:
        with fs.open_output_stream(path) as handle:
            handle.write(("\n".join(out) + "\n").encode("utf-8"))
    return changed


def _log_version(rel: str) -> int | None:
    name = rel.rsplit("/", 1)[-1].split(".", 1)[0]
    return int(name) if name.isdigit() else None


def _latest_checkpoint_version(fs: pafs.FileSystem, base: str) -> int | None:
    path = f"{base}/_delta_log/_last_checkpoint"
    try:
        with fs.open_input_file(path) as handle:
            return int(json.loads(handle.read())["version"])
    except (OSError, FileNotFoundError, KeyError, ValueError):
        return None
