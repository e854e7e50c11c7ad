"""Build silver from bronze: ``build_silver(lake, *, full=False, settings=None)``.

One run = one batch: the bronze ``webhook_events`` and ``ops_events`` rows committed after the
cursor (``silver/_state``), read through the change data feed, or everything with ``full=True``.
DuckDB parses and folds the batch (``silver.parse``, ``silver.messages``), sessionizes only the
contacts the batch touches (``silver.sessionize``) and replaces the changed rows; a full rebuild
runs the same SQL over all of bronze and overwrites. Folding rules are associative and
idempotent, so incremental runs in any batching give the same tables as one full rebuild — which is
also how a large full rebuild bounds its memory: it runs window by window of bronze receipt time
(``silver.chunks``), the first window as a full run and the others as incremental runs.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from bronze import schema as bronze_schema
from core.identity import is_lid_jid, is_phone_jid, jid_user, normalize_phone
from core.logging import get_logger
from core.settings import Settings, get_settings
from silver import chunks, io
from silver import schema as S  # noqa: N812
from silver.messages import PART_COLUMNS, build_parts, existing_as_parts, finalize_sql, fold
from silver.parse import parse
from silver.sessionize import closing_times, sessionize, unresolved_status
from silver.state import SilverState
from storage import log_tail
from storage.lake import Lake

log = get_logger(__name__)

# --------------------------------------------------------------------------------------------------
# bronze readers
# --------------------------------------------------------------------------------------------------


def _changed_rows(lake: Lake, table: str, after: int, upto: int, schema: pa.Schema) -> pa.Table:
    """Rows inserted into ``table`` in versions ``(after, upto]``, read by commit path
    (``storage.log_tail``: delta-rs' listing of the log is refused while receivers append).

    Compactions rewrite files with ``dataChange=false`` and add no change rows, so nothing is skipped
    by commit history: under concurrent appends delta-rs' ``history()`` labels commits with the wrong
    version, and skipping by those labels once dropped the rows of the append before a compaction.
    """
    return log_tail.inserted_rows(lake, table, after + 1, upto, schema).drop_columns(["_commit_version"])


def _snapshot(lake: Lake, table: str, version: int) -> DeltaTable | None:
    """``table`` as of ``version`` (found by :func:`log_tail.latest_version`), None when it has none.

    Loading a given version reads the log only up to commits known to exist, so it does not race the
    commits appended meanwhile the way loading the latest version does."""
    return lake.open(table, version=version) if version >= 0 else None


def _source(
    lake: Lake,
    table: str,
    schema: pa.Schema,
    after: int,
    upto: int,
    window: chunks.Window | None,
    dt: DeltaTable | None,
) -> object:
    """Bronze rows of one run: the rows received in ``window`` of the snapshot ``dt`` (full rebuilds, a
    filtered dataset) or, without a window, the rows committed in versions ``(after, upto]``
    (incremental runs)."""
    if upto < 0:
        return schema.empty_table()
    if window is not None:
        if dt is None:
            return schema.empty_table()
        flt = window.bronze_filter() if table == bronze_schema.WEBHOOK_EVENTS else window.ops_filter()
        dataset = lake.dataset(table, dt)
        return dataset if flt is None else dataset.filter(flt)
    if upto <= after:
        return schema.empty_table()
    return _changed_rows(lake, table, after, upto, schema)


# --------------------------------------------------------------------------------------------------
# identities
# --------------------------------------------------------------------------------------------------


def _phone_digits(value: str) -> str:
    """The digits ``normalize_phone`` works on (JID user part or the raw number), 9th digit added."""
    digits = "".join(ch for ch in (jid_user(value) if "@" in value else value) if ch.isdigit())
    if digits.startswith("55") and len(digits) == 12 and digits[4] in "6789":
        digits = digits[:4] + "9" + digits[4:]
    return digits


class PhoneNormalizer:
    """``core.identity.normalize_phone`` for many values, calling ``phonenumbers`` once per pattern.

    Whether a number is possible depends only on its country code (decided by its first 1-3 digits)
    and its length, so the answer is cached per (first 3 digits, length). The E.164 result is then
    ``+`` and the digits; a pattern whose representative does not format that way falls back to
    calling ``normalize_phone`` for every value (never seen in practice, kept for exactness).
    """

    def __init__(self) -> None:
        self._pattern: dict[tuple[str, int], bool | None] = {}

    def __call__(self, value: str) -> str | None:
        if "@" in value and not is_phone_jid(value):
            return None
        digits = _phone_digits(value)
        if not 8 <= len(digits) <= 15:
            return None
        key = (digits[:3], len(digits))
        verdict = self._pattern.get(key, "unknown")
        if verdict == "unknown":
            exact = normalize_phone(value)
            verdict = (exact is not None) if exact in (None, "+" + digits) else None
            self._pattern[key] = verdict
            return exact
        if verdict is None:
            return normalize_phone(value)
        return "+" + digits if verdict else None


def _jid_map(values: Iterable[str | None]) -> pa.Table:
    """Distinct JIDs / raw keys → (E.164 phone, normalized LID). Python runs once per distinct value."""
    normalize = PhoneNormalizer()
    jids, phones, lids = [], [], []
    for value in values:
        if not value:
            continue
        phone = normalize(value) if (is_phone_jid(value) or "@" not in value) else None
        lid = f"{jid_user(value)}@lid" if is_lid_jid(value) else None
        jids.append(value)
        phones.append(phone)
        lids.append(lid)
    return pa.table({"jid": jids, "phone": phones, "lid": lids}, schema=_JM_SCHEMA)


_JM_SCHEMA = pa.schema([("jid", pa.string()), ("phone", pa.string()), ("lid", pa.string())])


def _register_jids(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.sql(
        """
        select distinct j from (
            select unnest(direct_jids) as j from p_msg union all select unnest(part_jids) from p_msg
            union all select jid from p_contacts union all select phone_jid from p_contacts
            union all select lid_jid from p_contacts
            union all select participant_jid from p_gp union all select phone_jid from p_gp
            union all select lid_jid from p_gp union all select author_jid from p_gp
            union all select from_jid from p_calls union all select chat_jid from p_calls
            union all select owner_jid from p_groups union all select contact_key from ops_raw
        ) where j is not null
        """
    ).fetchall()
    con.register("jm_arrow", _jid_map(r[0] for r in rows))
    con.execute("create or replace temp table jm as select * from jm_arrow")
    con.unregister("jm_arrow")


# --------------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------------


def _connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"set memory_limit = '{settings.silver_memory_limit}'")
    con.execute(f"set temp_directory = '{tempfile.gettempdir()}/beazap-silver-duckdb'")
    con.execute("set preserve_insertion_order = false")
    if settings.silver_threads:
        con.execute(f"set threads = {int(settings.silver_threads)}")
    return con


def build_silver(
    lake: Lake, *, full: bool = False, settings: Settings | None = None, as_of: datetime | None = None
) -> dict[str, dict]:
    """Bring silver up to date with bronze; returns per-table stats.

    ``as_of`` fixes the run's as-of instant (default: the processing time bounded by what bronze holds;
    see ``_Run._as_of``); the instant used is recorded in the cursor and in ``stats["_run"]["as_of"]``.

    ``stats[table]`` has ``rows_written`` (rows upserted/appended/overwritten), ``rows_total``,
    ``bronze_version`` (bronze/webhook_events version processed up to), ``ops_version`` and
    ``rejects`` (rows sent to silver/rejects in this run) plus ``seconds`` for the whole run under
    the ``_run`` key.
    """
    settings = settings or get_settings()
    started = time.perf_counter()
    state = SilverState() if full else SilverState.load(lake)
    # the latest versions by commit path: delta-rs' version() lists the log and is refused ("gap")
    # while receivers append
    b_to = log_tail.latest_version(lake, bronze_schema.WEBHOOK_EVENTS, after=state.bronze_version)
    o_to = log_tail.latest_version(lake, bronze_schema.OPS_EVENTS, after=state.ops_version)
    if not full and state.bronze_version < 0 and state.ops_version < 0:
        full = True  # first run: nothing to increment on
    nothing_new = b_to <= state.bronze_version and o_to <= state.ops_version
    if not full and nothing_new and (as_of is None or (state.as_of is not None and as_of <= state.as_of)):
        return _stats(
            lake, {}, b_to=state.bronze_version, o_to=state.ops_version, rejects=0, started=started, as_of=state.as_of
        )
    # a full rebuild runs window by window: the first like a full run, the others like incremental
    # runs over the rows received in their window (silver itself carries the state between them)
    snapshots: dict[str, DeltaTable | None] = {}
    if full:  # a full rebuild reads the tables as of the versions found above
        snapshots = {
            bronze_schema.WEBHOOK_EVENTS: _snapshot(lake, bronze_schema.WEBHOOK_EVENTS, b_to),
            bronze_schema.OPS_EVENTS: _snapshot(lake, bronze_schema.OPS_EVENTS, o_to),
        }
    windows = (
        chunks.plan(snapshots[bronze_schema.WEBHOOK_EVENTS], settings.silver_rebuild_chunk_rows) if full else [None]
    )
    last_version = _run_version(b_to, o_to)
    written: dict[str, int] = {}
    rejects = 0
    for i, window in enumerate(windows):
        run = _Run(
            lake,
            settings,
            full=full and i == 0,
            state=state,
            b_to=b_to,
            o_to=o_to,
            as_of=as_of,
            window=window,
            snapshots=snapshots,
            version=last_version - (len(windows) - 1 - i),  # increasing, the last one as before
        )
        try:
            for table, rows in run.execute().items():
                written[table] = written.get(table, 0) + rows
        finally:
            run.con.close()
        rejects += run.rejects
        if len(windows) > 1:
            log.info(
                "silver_window_built",
                window=i + 1,
                windows=len(windows),
                seconds=round(time.perf_counter() - started, 3),
            )
    state.bronze_version = b_to
    state.ops_version = o_to
    state.save(lake)
    stats = _stats(lake, written, b_to=b_to, o_to=o_to, rejects=rejects, started=started, as_of=state.as_of)
    log.info(
        "silver_built",
        full=full,
        bronze_version=b_to,
        ops_version=o_to,
        messages=written.get(S.MESSAGES, 0),
        conversations=written.get(S.CONVERSATIONS, 0),
        rejects=rejects,
        windows=len(windows),
        as_of=state.as_of.isoformat() if state.as_of else None,
        seconds=round(time.perf_counter() - started, 3),
    )
    return stats


ALL_TABLES = (
    S.MESSAGES,
    S.MESSAGE_EVENTS,
    S.CONVERSATIONS,
    S.CONTACTS,
    S.GROUPS,
    S.GROUP_PARTICIPANTS,
    S.CALLS,
    S.CONNECTION_EVENTS,
    S.OPS_EVENTS,
    S.REJECTS,
)


def _stats(
    lake: Lake,
    written: dict[str, int],
    *,
    b_to: int,
    o_to: int,
    rejects: int,
    started: float,
    as_of: datetime | None = None,
) -> dict:
    out: dict[str, dict] = {}
    for table in ALL_TABLES:
        dt = lake.open_or_none(table)
        total = _count(lake, table, dt) if dt is not None else 0
        out[table] = {
            "rows_written": int(written.get(table, 0)),
            "rows_total": total,
            "bronze_version": b_to,
            "ops_version": o_to,
            "rejects": rejects if table == S.REJECTS else 0,
        }
    out["_run"] = {
        "seconds": round(time.perf_counter() - started, 3),
        "bronze_version": b_to,
        "ops_version": o_to,
        "as_of": as_of,
    }
    return out


def _run_version(b_to: int, o_to: int) -> int:
    """The Delta app transaction version of a run over bronze up to ``b_to`` / ops up to ``o_to``."""
    return (b_to + 1) * 1_000_000_000 + (o_to + 1)


def _count(lake: Lake, table: str, dt: DeltaTable) -> int:
    try:
        return int(dt.count())
    except Exception:
        return int(lake.dataset(table, dt).count_rows())


class _Run:
    """One silver run over one batch of bronze rows."""

    def __init__(
        self,
        lake: Lake,
        settings: Settings,
        *,
        full: bool,
        state: SilverState,
        b_to: int,
        o_to: int,
        as_of: datetime | None = None,
        window: chunks.Window | None = None,
        snapshots: dict[str, DeltaTable | None] | None = None,
        version: int | None = None,
    ):
        self.lake = lake
        self.settings = settings
        self.full = full
        self.state = state
        self.b_to = b_to
        self.o_to = o_to
        self.window = window  # full rebuilds: the bronze receipt-time window of this run
        self.snapshots = snapshots or {}  # full rebuilds: the bronze tables as of b_to / o_to
        # one monotonically increasing number per run, recorded as the Delta app transaction version
        self.version = _run_version(b_to, o_to) if version is None else version
        self.con = _connect(settings)
        self.rejects = 0
        self.timeout_s = settings.session_timeout_hours * 3600.0
        self.reopen_s = settings.reopen_window_hours * 3600.0
        self.abandon_s = settings.abandon_after_hours * 3600.0
        self.requested_as_of = as_of
        self.bronze_latest: datetime | None = None  # latest receipt / event / action time of this batch

    # ---------------------------------------------------------------------------------------------
    def execute(self) -> dict[str, int]:
        con, lake = self.con, self.lake
        src = _source(
            lake,
            bronze_schema.WEBHOOK_EVENTS,
            bronze_schema.WEBHOOK_EVENTS_SCHEMA,
            self.state.bronze_version,
            self.b_to,
            self.window,
            self.snapshots.get(bronze_schema.WEBHOOK_EVENTS),
        )
        ops = _source(
            lake,
            bronze_schema.OPS_EVENTS,
            bronze_schema.OPS_EVENTS_SCHEMA,
            self.state.ops_version,
            self.o_to,
            self.window,
            self.snapshots.get(bronze_schema.OPS_EVENTS),
        )
        con.register("ops_src", ops)
        con.execute(
            """
            create or replace temp table ops_raw as
            select distinct on (action_id) action_id, instance as instance_id, conversation_id, contact_key, action,
                   actor_id, attendant_id, team_id, occurred_at, details
            from ops_src order by action_id
            """
        )
        self._parse_chunked(src)
        _register_jids(con)
        con.execute(
            """
            create or replace temp table ops_new as
            select o.action_id, o.instance_id, o.conversation_id,
                   coalesce(j.phone, j.lid, o.contact_key) as contact_key, o.action, o.actor_id, o.attendant_id,
                   o.team_id, o.occurred_at, o.details
            from ops_raw o left join jm j on j.jid = o.contact_key
            """
        )
        # partial message rows need the push name too (contacts)
        build_parts(con)
        self._register_existing()
        self._contacts()
        written: dict[str, int] = {}
        written.update(self._messages_and_conversations())
        written.update(self._entities())
        return written

    def _parse_chunked(self, src: object) -> None:
        """Parse bronze in chunks of ``silver_chunk_rows`` so memory follows the chunk, not the lake:
        each chunk's compact partial tables are appended to the run's ``p_*`` tables."""
        con = self.con
        columns = [f.name for f in bronze_schema.WEBHOOK_EVENTS_SCHEMA]
        if isinstance(src, pa.Table):
            reader = pa.RecordBatchReader.from_batches(src.schema, src.to_batches())
        else:
            reader = src.scanner(columns=columns, batch_size=64 * 1024).to_reader()  # type: ignore[attr-defined]
        chunk_rows = max(1, int(self.settings.silver_chunk_rows))
        pending: list[pa.RecordBatch] = []
        rows = 0
        first = True

        def flush(batches: list[pa.RecordBatch]) -> None:
            nonlocal first
            con.register("src", pa.Table.from_batches(batches, schema=reader.schema))
            parse(con)
            con.unregister("src")
            for name in _PARSED:
                if first:
                    con.execute(f"create or replace temp table acc_{name} as select * from {name}")
                else:
                    con.execute(f"insert into acc_{name} select * from {name}")
                con.execute(f"drop table {name}")
            first = False

        for batch in reader:
            if batch.num_rows:
                latest = pc.max(batch.column("received_at")).as_py()
                if latest is not None and (self.bronze_latest is None or latest > self.bronze_latest):
                    self.bronze_latest = latest
            pending.append(batch)
            rows += batch.num_rows
            if rows >= chunk_rows:
                flush(pending)
                pending, rows = [], 0
        if pending or first:
            flush(pending or [pa.RecordBatch.from_pylist([], schema=reader.schema)])
        for name in _PARSED:
            con.execute(f"alter table acc_{name} rename to {name}")

    # ---------------------------------------------------------------------------------------------
    def _register_existing(self) -> None:
        con, lake = self.con, self.lake
        specs = {
            "ex_messages": (S.MESSAGES, S.MESSAGES_SCHEMA),
            "ex_conversations": (S.CONVERSATIONS, S.CONVERSATIONS_SCHEMA),
            "ex_contacts": (S.CONTACTS, S.CONTACTS_SCHEMA),
            "ex_ops": (S.OPS_EVENTS, S.OPS_EVENTS_SCHEMA),
            "ex_calls": (S.CALLS, S.CALLS_SCHEMA),
            "ex_groups": (S.GROUPS, S.GROUPS_SCHEMA),
        }
        for name, (table, schema) in specs.items():
            if self.full:
                con.register(name, schema.empty_table())
            else:
                io.register(con, name, lake, table, schema)

    # ---------------------------------------------------------------------------------------------
    def _contacts(self) -> None:
        """LID ↔ phone map and the contacts fold.

        Full runs fold everything. Incremental runs fold only the contacts the batch touches (with
        their existing rows) and replace just those keys; the LID map comes from a narrow scan."""
        con = self.con
        con.execute(
            """
            create or replace temp table contact_parts as
            select instance_id, contact_phone as phone, contact_lid as lid, push_name, event_at as push_name_at,
                   event_at as first_seen_at, event_at as last_seen_at
            from parts where chat_type = 'direct' and event_at is not null
            union all
            select c.instance_id, coalesce(a.phone, b.phone), coalesce(a.lid, d.lid), c.push_name, c.received_at,
                   null, null
            from p_contacts c left join jm a on a.jid = c.jid left join jm b on b.jid = c.phone_jid
                 left join jm d on d.jid = c.lid_jid
            union all
            select g.instance_id, coalesce(a.phone, b.phone), coalesce(a.lid, d.lid), null, null, null, null
            from p_gp g left join jm a on a.jid = g.participant_jid left join jm b on b.jid = g.phone_jid
                 left join jm d on d.jid = g.lid_jid
            where coalesce(a.phone, b.phone) is not null and coalesce(a.lid, d.lid) is not null
            """
        )
        con.execute(
            """
            create or replace temp table lidmap as
            select instance_id, lid, min(phone) as phone from (
                select instance_id, lid, phone from contact_parts where lid is not null and phone is not null
                union all
                select instance_id, lid, phone_e164 from ex_contacts where lid is not null and phone_e164 is not null
            ) group by all
            """
        )
        # LIDs that had their own contact row and now map to a phone: their history moves to the phone
        con.execute(
            """
            create or replace temp table newly_mapped as
            select distinct c.instance_id, c.contact_key as lid, m.phone
            from ex_contacts c join lidmap m on m.instance_id = c.instance_id and m.lid = c.contact_key
            where c.phone_e164 is null
            """
        )
        key = "coalesce(p.phone, m.phone, p.lid)"
        con.execute(
            f"""
            create or replace temp table contact_keys as
            select distinct p.instance_id, {key} as contact_key
            from contact_parts p left join lidmap m on m.instance_id = p.instance_id and m.lid = p.lid
            where {key} is not null
            union select instance_id, lid from newly_mapped
            union select instance_id, phone from newly_mapped
            """
        )
        existing = (
            "select instance_id, phone_e164, lid, push_name, push_name_at, first_seen_at, last_seen_at from ex_contacts"
            if self.full
            else """select x.instance_id, x.phone_e164, x.lid, x.push_name, x.push_name_at, x.first_seen_at,
                           x.last_seen_at
                    from ex_contacts x semi join contact_keys k using (instance_id, contact_key)"""
        )
        con.execute(
            f"""
            create or replace temp table contacts_out as
            with p as (
                select instance_id, phone, lid, push_name, push_name_at, first_seen_at, last_seen_at
                from contact_parts
                union all {existing}
            ),
            k as (
                select p.*, {key} as contact_key
                from p left join lidmap m on m.instance_id = p.instance_id and m.lid = p.lid
                where coalesce(p.phone, p.lid) is not null
            )
            select instance_id, contact_key,
                   case when contact_key like '+%' then contact_key end as phone_e164,
                   min(lid) as lid,
                   arg_max(push_name, {{'a': push_name_at, 'b': push_name}}) filter (where push_name is not null)
                       as push_name,
                   min(first_seen_at) as first_seen_at, max(last_seen_at) as last_seen_at,
                   max(push_name_at) filter (where push_name is not null) as push_name_at
            from k group by instance_id, contact_key
            """
        )

    # ---------------------------------------------------------------------------------------------
    def _messages_and_conversations(self) -> dict[str, int]:
        con = self.con
        contact_expr = "coalesce(p.contact_phone, m.phone, p.contact_lid)"
        # contacts whose conversations may change: new content, moved LIDs, ops actions
        con.execute(
            f"""
            create or replace temp table affected0 as
            select distinct p.instance_id, {contact_expr} as contact_key
            from parts p left join lidmap m on m.instance_id = p.instance_id and m.lid = p.contact_lid
            where p.chat_type = 'direct' and p.event_at is not null and {contact_expr} is not null
            union select instance_id, phone from newly_mapped
            union select instance_id, lid from newly_mapped
            union select o.instance_id, coalesce(m.phone, o.contact_key) from ops_new o
                  left join lidmap m on m.instance_id = o.instance_id and m.lid = o.contact_key
                  where o.contact_key is not null
            """
        )
        if self.full:
            fold(con, "parts")
            con.execute("create or replace temp table ex_rows as select * from ex_messages")
        else:
            con.execute("create or replace temp table part_keys as select distinct instance_id, message_id from parts")
            self._existing_rows(
                """left join part_keys k on k.instance_id = x.instance_id and k.message_id = x.message_id
                   left join affected0 a on a.instance_id = x.instance_id and a.contact_key = x.contact_key""",
                "k.message_id is not null or a.contact_key is not null",
                create=True,
            )
            con.execute(
                f"""
                create or replace temp table all_parts as
                select {PART_COLUMNS} from parts
                union all by name
                select * from ({existing_as_parts("ex_rows")}) e
                where exists (select 1 from part_keys k where k.instance_id = e.instance_id
                                                          and k.message_id = e.message_id)
                   or exists (select 1 from newly_mapped n where n.instance_id = e.instance_id
                                                            and n.lid = e.contact_lid)
                """
            )
            fold(con, "all_parts")
        con.execute(
            "create or replace temp table msg_conv (instance_id varchar, message_id varchar, conversation_id varchar)"
        )
        con.execute(f"create or replace temp table fin0 as {finalize_sql('folded')}")
        self._as_of()
        if not self.full:
            # message_sent for an existing message changes its conversation's first response too
            con.execute(
                """
                create or replace temp table extra_contacts as
                select distinct f.instance_id, f.contact_key from fin0 f
                where f.chat_type = 'direct' and f.contact_key is not null and f.event_at is not null
                  and exists (select 1 from ops_new o where o.action = 'message_sent'
                              and o.instance_id = f.instance_id
                              and json_extract_string(o.details, '$.message_id') = f.message_id)
                  and not exists (select 1 from affected0 a where a.instance_id = f.instance_id
                                                             and a.contact_key = f.contact_key)
                """
            )
            if con.execute("select count(*) from extra_contacts").fetchall()[0][0]:
                con.execute("insert into affected0 select * from extra_contacts")
                self._existing_rows(
                    """join extra_contacts a on a.instance_id = x.instance_id and a.contact_key = x.contact_key
                       left join ex_rows e on e.instance_id = x.instance_id and e.message_id = x.message_id""",
                    "e.message_id is null",
                    create=False,
                )
        tl_cols = "instance_id, contact_key, message_id, event_at, direction, automated, sender_attendant_id, chat_jid"
        if self.full:
            con.execute(
                f"""create or replace temp table tl_msgs as select {tl_cols} from fin0
                    where chat_type = 'direct' and event_at is not null and contact_key is not null"""
            )
            self._ops_keyed(filtered=False)
        else:
            con.execute(
                f"""
                create or replace temp table tl_msgs as
                select {tl_cols} from fin0 f
                where f.chat_type = 'direct' and f.event_at is not null and f.contact_key is not null
                  and exists (select 1 from affected0 a where a.instance_id = f.instance_id
                                                         and a.contact_key = f.contact_key)
                union all
                select {tl_cols} from ex_rows x
                where x.chat_type = 'direct' and x.event_at is not null
                  and exists (select 1 from affected0 a where a.instance_id = x.instance_id
                                                         and a.contact_key = x.contact_key)
                  and not exists (select 1 from fin0 f where f.instance_id = x.instance_id
                                                         and f.message_id = x.message_id)
                """
            )
            self._ops_keyed(filtered=True)
        sessionize(con, timeout_s=self.timeout_s, reopen_s=self.reopen_s, abandon_s=self.abandon_s, as_of=self.as_of)
        written: dict[str, int] = {}
        if self.full:
            rel = con.sql(
                "select f.* exclude (conversation_id), mc.conversation_id from fin0 f "
                "left join msg_conv mc using (instance_id, message_id) order by f.event_month, f.event_at"
            )
            io.overwrite(self.lake, S.MESSAGES, rel, S.MESSAGES_SCHEMA, S.MESSAGES_PARTITIONS, self.version)
            written[S.MESSAGES] = con.execute("select count(*) from fin0").fetchall()[0][0]
            io.overwrite(
                self.lake,
                S.CONVERSATIONS,
                con.sql("select * from conv_out order by opened_at"),
                S.CONVERSATIONS_SCHEMA,
                S.CONVERSATIONS_PARTITIONS,
                self.version,
            )
            written[S.CONVERSATIONS] = con.execute("select count(*) from conv_out").fetchall()[0][0]
            return written
        # incremental: changed messages (new/refolded + conversation id moves)
        con.execute(
            """
            create or replace temp table msg_write as
            select f.* exclude (conversation_id), coalesce(mc.conversation_id, x.conversation_id) as conversation_id
            from fin0 f
            left join msg_conv mc using (instance_id, message_id)
            left join ex_rows x using (instance_id, message_id)  -- contact not re-sessionized: keeps its id
            union all by name
            select x.* exclude (conversation_id), mc.conversation_id from ex_rows x
            join msg_conv mc using (instance_id, message_id)
            where mc.conversation_id is distinct from x.conversation_id
              and not exists (select 1 from fin0 f where f.instance_id = x.instance_id and f.message_id = x.message_id)
            """
        )
        written[S.MESSAGES] = self._write_messages()
        # conversations: recomputed contacts replace theirs; quiet open ones past the timeout expire
        con.execute(
            f"""
            create or replace temp table conv_write as
            select * exclude (sess), false as _delete from conv_out
            union all by name
            select x.conversation_id, x.instance_id, x.contact_key, x.opened_at, x.opened_month, true as _delete
            from ex_conversations x
            where exists (select 1 from affected0 a where a.instance_id = x.instance_id
                                                    and a.contact_key = x.contact_key)
              and not exists (select 1 from conv_out c where c.conversation_id = x.conversation_id)
            union all by name
            select x.* replace (c.status as status, c.expired_at as expired_at, c.closed_at as closed_at),
                   false as _delete
            from ex_conversations x
            join (select conversation_id, status, {
                closing_times(
                    "status", "opened_at", "last_message_at", self.timeout_s, self.abandon_s, resolved_at="null"
                )
            }
                  from (select conversation_id, opened_at, last_message_at, {
                unresolved_status(
                    "origin",
                    "first_response_at",
                    "opened_at",
                    "last_message_at",
                    self.as_of,
                    self.timeout_s,
                    self.abandon_s,
                )
            } as status
                        from ex_conversations where status = 'open')) c using (conversation_id)
            where x.status = 'open' and c.status <> 'open'
              and not exists (select 1 from affected0 a where a.instance_id = x.instance_id
                                                        and a.contact_key = x.contact_key)
            """
        )
        written[S.CONVERSATIONS] = self._write_conversations()
        return written

    def _as_of(self) -> None:
        """The run's as-of instant: the processing time, bounded by what bronze holds (its latest
        receipt, message event or action time), never before the previous run's; an explicit
        ``as_of`` replaces the processing time. Recorded in the cursor (``SilverState.as_of``)."""
        con = self.con
        latest = [self.bronze_latest]
        latest += con.execute("select max(event_at) from fin0").fetchall()[0]
        latest += con.execute("select max(occurred_at) from ops_new").fetchall()[0]
        known = [t for t in latest if t is not None]
        bronze_wm = max(known) if known else None
        if self.requested_as_of is not None:
            as_of = self.requested_as_of.astimezone(UTC)
        elif bronze_wm is not None:
            as_of = min(datetime.now(UTC), bronze_wm)
        elif self.state.as_of is not None:
            as_of = self.state.as_of
        else:  # bronze holds nothing yet: nothing to close and no instant to record — the wall clock
            # would pin the runs after it past the bronze they read (unlike a full rebuild of it)
            self.as_of = datetime.now(UTC)
            return
        if self.state.as_of is not None and self.state.as_of > as_of:
            as_of = self.state.as_of
        self.as_of = as_of
        self.state.as_of = as_of

    def _write_messages(self) -> int:
        """Replace the rows of ``msg_write`` in silver/messages.

        Stubs (no event time, partition NULL) are replaced by key. Timed rows are replaced by event-time
        ranges (at most 32) around the new and the old times of the changed messages: the rows of those
        ranges that did not change are rewritten as they were. The ranges prune time-sorted files by
        statistics, and a range predicate is cheap for delta-rs to evaluate where a list of thousands of
        keys is not, so the cost follows the batch rather than the table."""
        con = self.con
        con.execute(
            """
            create or replace temp table msg_old as
            select x.instance_id, x.message_id, x.event_month, x.event_at
            from ex_rows x semi join msg_write w using (instance_id, message_id)
            """
        )
        touched = "select event_month, event_at from msg_write union all select event_month, event_at from msg_old"
        ranges = io.time_ranges(
            [r[0] for r in con.sql(f"select distinct event_at from ({touched}) where event_at is not null").fetchall()]
        )
        stub_keys = con.sql(
            "select instance_id, message_id from msg_write where event_month is null "
            "union select instance_id, message_id from msg_old where event_month is null"
        ).fetchall()
        kept = io.rows_in_ranges("ex_messages", "event_at", ranges)
        con.execute(
            f"""
            create or replace temp table msg_data as
            select * from msg_write
            union all by name
            select k.* from ({kept}) k
            where k.event_month is not null
              and not exists (select 1 from msg_write w where w.instance_id = k.instance_id
                                                        and w.message_id = k.message_id)
            """
        )
        months = [
            r[0]
            for r in con.sql(f"select distinct event_month from ({touched}) where event_month is not null").fetchall()
        ]
        timed = _and(_in_filter("event_month", months), io.ranges_predicate("event_at", ranges)) if ranges else None
        stubs = io.keys_predicate(stub_keys, "instance_id", "message_id")
        predicate = " or ".join(f"({p})" for p in (timed, f"event_month is null and ({stubs})" if stubs else None) if p)
        io.replace_where(
            self.lake,
            S.MESSAGES,
            io.relation_table(con.sql("select * from msg_data order by event_month, event_at"), S.MESSAGES_SCHEMA),
            S.MESSAGES_SCHEMA,
            S.MESSAGES_PARTITIONS,
            predicate or None,
            self.version,
        )
        return con.execute("select count(*) from msg_write").fetchall()[0][0]

    def _write_conversations(self) -> int:
        """Replace the rows of ``conv_write`` in silver/conversations by opened-time ranges (see
        :meth:`_write_messages`); ``_delete`` rows are only removed."""
        con = self.con
        # an id already stored under another opening time (its opening message's content changed) goes too
        con.execute(
            """
            create or replace temp table conv_touch as
            select opened_at, opened_month from conv_write
            union
            select x.opened_at, x.opened_month from ex_conversations x semi join conv_write using (conversation_id)
            """
        )
        ranges = io.time_ranges([r[0] for r in con.sql("select distinct opened_at from conv_touch").fetchall()])
        if not ranges:
            return 0
        kept = io.rows_in_ranges("ex_conversations", "opened_at", ranges)
        con.execute(
            f"""
            create or replace temp table conv_data as
            select * exclude (_delete) from conv_write where not _delete
            union all by name
            select k.* from ({kept}) k
            where not exists (select 1 from conv_write w where w.conversation_id = k.conversation_id)
            """
        )
        months = [
            r[0]
            for r in con.sql("select opened_month from conv_touch union select opened_month from conv_data").fetchall()
        ]
        io.replace_where(
            self.lake,
            S.CONVERSATIONS,
            io.relation_table(con.sql("select * from conv_data order by opened_at"), S.CONVERSATIONS_SCHEMA),
            S.CONVERSATIONS_SCHEMA,
            S.CONVERSATIONS_PARTITIONS,
            _and(_in_filter("opened_month", months), io.ranges_predicate("opened_at", ranges)),
            self.version,
        )
        return con.execute("select count(*) from conv_write where not _delete").fetchall()[0][0]

    def _existing_rows(self, joins: str, condition: str, *, create: bool) -> None:
        """Existing message rows matching ``joins`` + ``condition`` (on alias ``x``) into ``ex_rows``, in
        two passes: a narrow pass (hash joins over four key columns) finds the keys, their partitions and
        earliest event time; the full-row pass then reads only those partitions from that time on
        (time-sorted files prune by statistics)."""
        con = self.con
        con.execute(
            f"""
            create or replace temp table ex_keys as
            select x.instance_id, x.message_id, x.event_month, x.event_at from ex_messages x {joins} where {condition}
            """
        )
        months, stubs, min_at = con.execute(
            "select list(distinct event_month) filter (where event_month is not null), "
            "count(*) filter (where event_month is null), min(event_at) from ex_keys"
        ).fetchall()[0]
        match = "exists (select 1 from ex_keys k where k.instance_id = x.instance_id and k.message_id = x.message_id)"
        parts = []
        if months:
            parts.append(
                f"select x.* from ex_messages x where x.event_month in ({io.sql_list(sorted(months))}) "
                f"and x.event_at >= '{min_at.isoformat()}'::timestamptz and {match}"
            )
        if stubs:
            parts.append(f"select x.* from ex_messages x where x.event_month is null and {match}")
        sql = " union all ".join(parts) or "select * from ex_messages where false"
        con.execute(f"create or replace temp table ex_rows as {sql}" if create else f"insert into ex_rows {sql}")

    def _ops_keyed(self, *, filtered: bool) -> None:
        """``tl_ops``: ops actions (new + already in silver) with LID keys resolved to phones.

        Incremental runs read only the history of the affected contacts (and of the LIDs that map to
        them), narrowing the ops log before anything else."""
        con = self.con
        actions = "('assign', 'transfer', 'route', 'unassign', 'resolve', 'reopen')"
        cols = ", ".join(f"x.{c}" for c in _OPS_TL_COLUMNS)  # not ``details``: the widest column
        if filtered:
            con.execute(
                """
                create or replace temp table ops_keys as
                select instance_id, contact_key from affected0
                union select m.instance_id, m.lid from lidmap m
                      join affected0 a on a.instance_id = m.instance_id and a.contact_key = m.phone
                """
            )
            # an action before a contact's first message never applies to a conversation (sessionize),
            # so the history starts at the earliest timeline message (ops files are time-sorted)
            first = con.execute("select min(event_at) from tl_msgs").fetchall()[0][0]
            since = f"x.occurred_at >= '{first.isoformat()}'" if first is not None else "false"
            history = f"""select {cols} from ex_ops x semi join ops_keys k using (instance_id, contact_key)
                          where x.action in {actions} and {since}"""
        else:
            history = f"select {cols} from ex_ops x where x.action in {actions}"
        con.execute(
            f"""
            create or replace temp table tl_ops as
            select distinct on (o.action_id) o.action_id, o.instance_id,
                   coalesce(m.phone, o.contact_key) as contact_key, o.action, o.actor_id, o.attendant_id,
                   o.team_id, o.occurred_at
            from (select * from ops_new union all by name {history}) o
            left join lidmap m on m.instance_id = o.instance_id and m.lid = o.contact_key
            where o.contact_key is not null
            order by o.action_id
            """
        )
        if filtered:
            con.execute(
                "delete from tl_ops t where not exists (select 1 from affected0 a where a.instance_id = t.instance_id"
                " and a.contact_key = t.contact_key)"
            )

    # ---------------------------------------------------------------------------------------------
    def _entities(self) -> dict[str, int]:
        con, lake, v = self.con, self.lake, self.version
        written: dict[str, int] = {}
        # contacts: whole table (small: one row per contact)
        if self.full:
            io.overwrite(lake, S.CONTACTS, con.sql("select * from contacts_out"), S.CONTACTS_SCHEMA, None, v)
            written[S.CONTACTS] = con.execute("select count(*) from contacts_out").fetchall()[0][0]
        elif self.window is not None:  # a later window of a full rebuild: rewrite the (small) table whole
            written[S.CONTACTS] = self._rewrite_small(
                S.CONTACTS, "contacts_out", "ex_contacts", "contact_keys", S.CONTACTS_SCHEMA, S.CONTACTS_KEY
            )
        else:  # touched contacts replace theirs; merged LID rows (in contact_keys, not in the output) go.
            # Contact keys are phones: they never go into the (logged) predicate, so the contacts of
            # the touched instances are rewritten whole, untouched ones carried over.
            touched = [r[0] for r in con.execute("select distinct instance_id from contact_keys").fetchall()]
            carried = io.rows_of_instances("ex_contacts", touched)
            data = con.sql(
                f"""select * from contacts_out union all by name
                    select * from ({carried}) x
                    where not exists (select 1 from contact_keys k
                                      where k.instance_id = x.instance_id and k.contact_key = x.contact_key)"""
            )
            io.replace_where(
                lake,
                S.CONTACTS,
                io.relation_table(data, S.CONTACTS_SCHEMA),
                S.CONTACTS_SCHEMA,
                None,
                io.instances_predicate(touched),
                v,
            )
            written[S.CONTACTS] = con.execute("select count(*) from contacts_out").fetchall()[0][0]
        # message history, participants, connection events, ops events, rejects: append-only
        appends = {
            S.MESSAGE_EVENTS: (
                "select *, strftime(event_at, '%Y-%m') as event_month from p_events",
                S.MESSAGE_EVENTS_SCHEMA,
                S.MESSAGE_EVENTS_PARTITIONS,
            ),
            S.GROUP_PARTICIPANTS: (
                """select g.instance_id, g.group_jid, coalesce(b.phone, a.phone, a.lid, g.participant_jid)
                          as participant_key, g.action, g.admin, coalesce(c.phone, c.lid, g.author_jid) as author_key,
                          g.event_at, g.receipt_id
                   from p_gp g left join jm a on a.jid = g.participant_jid left join jm b on b.jid = g.phone_jid
                        left join jm c on c.jid = g.author_jid""",
                S.GROUP_PARTICIPANTS_SCHEMA,
                None,
            ),
            S.CONNECTION_EVENTS: ("select * from p_conn", S.CONNECTION_EVENTS_SCHEMA, None),
            S.OPS_EVENTS: ("select * from ops_new order by occurred_at", S.OPS_EVENTS_SCHEMA, None),
            S.REJECTS: ("select * from p_rejects", S.REJECTS_SCHEMA, None),
        }
        for table, (sql, schema, parts) in appends.items():
            if self.full:
                io.overwrite(lake, table, con.sql(sql), schema, parts, v)
                written[table] = con.execute(f"select count(*) from ({sql})").fetchall()[0][0]
            else:
                written[table] = io.append(lake, table, io.relation_table(con.sql(sql), schema), schema, parts, v)
        self.rejects = con.execute("select count(*) from p_rejects").fetchall()[0][0]
        # calls and groups: folded per key
        self._calls(written)
        self._groups(written)
        return written

    def _calls(self, written: dict[str, int]) -> None:
        con = self.con
        con.execute(
            """
            create or replace temp table call_parts as
            select c.instance_id, c.call_id, c.chat_jid,
                   coalesce(j.phone, lm.phone, j.lid) as contact_key, c.is_video, c.is_group, c.group_jid,
                   case when c.status in ('offer', 'ringing') then c.at end as offered_at,
                   case when c.status = 'accept' then c.at end as accepted_at,
                   case when c.status in ('reject', 'timeout', 'terminate') then c.at end as ended_at,
                   case c.status when 'accept' then 4 when 'reject' then 3 when 'timeout' then 2
                                 when 'terminate' then 2 else 1 end as outcome_rank,
                   c.status as last_status, c.at as last_at
            from p_calls c left join jm j on j.jid = coalesce(c.from_jid, c.chat_jid)
                 left join lidmap lm on lm.instance_id = c.instance_id and lm.lid = j.lid
            """
        )
        con.execute(
            """
            insert into call_parts
            select x.instance_id, x.call_id, x.chat_jid, x.contact_key, x.is_video, x.is_group, x.group_jid,
                   x.offered_at, x.accepted_at, x.ended_at,
                   case x.outcome when 'accepted' then 4 when 'rejected' then 3 when 'missed' then 2 else 1 end,
                   x.last_status, greatest(x.offered_at, x.accepted_at, x.ended_at)
            from ex_calls x where exists (select 1 from p_calls p where p.instance_id = x.instance_id
                                                                   and p.call_id = x.call_id)
            """
        )
        rel = con.sql(
            """
            select instance_id, call_id, min(chat_jid) as chat_jid, min(contact_key) as contact_key,
                   bool_or(is_video) as is_video, bool_or(is_group) as is_group, min(group_jid) as group_jid,
                   min(offered_at) as offered_at, min(accepted_at) as accepted_at, max(ended_at) as ended_at,
                   case max(outcome_rank) when 4 then 'accepted' when 3 then 'rejected' when 2 then 'missed'
                        else 'offered' end as outcome,
                   arg_max(last_status, {'a': last_at, 'b': last_status}) as last_status,
                   strftime(coalesce(min(offered_at), min(accepted_at), max(ended_at)), '%Y-%m') as event_month
            from call_parts group by instance_id, call_id
            """
        )
        self._write_folded(S.CALLS, rel, S.CALLS_SCHEMA, S.CALLS_KEY, written, existing="ex_calls")

    def _groups(self, written: dict[str, int]) -> None:
        con = self.con
        con.execute(
            """
            create or replace temp table group_parts as
            select g.instance_id, g.group_jid, g.subject, coalesce(j.phone, j.lid, g.owner_jid) as owner_key,
                   g.description, g.created_at, g.size, g.updated_at
            from p_groups g left join jm j on j.jid = g.owner_jid
            union all
            select x.* from ex_groups x
            where exists (select 1 from p_groups p where p.instance_id = x.instance_id and p.group_jid = x.group_jid)
            """
        )
        latest = ",\n".join(
            f"arg_max({c}, {{'a': updated_at, 'b': {c}}}) filter (where {c} is not null) as {c}"
            for c in ("subject", "owner_key", "description", "created_at", "size")
        )
        rel = con.sql(
            f"select instance_id, group_jid, {latest}, max(updated_at) as updated_at from group_parts group by all"
        )
        # group JIDs of the old form embed the creator's phone: not a predicate value (see _write_folded)
        self._write_folded(S.GROUPS, rel, S.GROUPS_SCHEMA, S.GROUPS_KEY, written, existing="ex_groups", personal=True)

    def _write_folded(
        self,
        table: str,
        rel: duckdb.DuckDBPyRelation,
        schema: pa.Schema,
        keys: tuple[str, ...],
        written: dict[str, int],
        *,
        existing: str,
        personal: bool = False,
    ) -> None:
        """Replace the folded rows by key (``existing``: the registered table of their current rows). When
        the keys are ``personal`` data, whole instances are replaced instead (the predicate names only
        instance ids) and their untouched rows are carried over from ``existing``."""
        if self.full:
            io.overwrite(self.lake, table, rel, schema, None, self.version)
            written[table] = rel.count("*").fetchall()[0][0]
        elif self.window is not None:  # a later window of a full rebuild: rewrite the (small) table whole
            self.con.execute(f"create or replace temp table folded_{existing} as {rel.sql_query()}")
            written[table] = self._rewrite_small(
                table, f"folded_{existing}", existing, f"folded_{existing}", schema, keys
            )
        elif not personal:
            data = io.relation_table(rel, schema)
            pairs = list(zip(data.column(keys[0]).to_pylist(), data.column(keys[1]).to_pylist(), strict=True))
            written[table] = io.replace_where(
                self.lake, table, data, schema, None, io.keys_predicate(pairs, keys[0], keys[1]), self.version
            )
        else:
            data = io.relation_table(rel, schema)
            touched = sorted(set(data.column(keys[0]).to_pylist()))
            self.con.register("folded_new", data)
            merged = self.con.sql(
                f"""select * from folded_new union all by name
                    select * from ({io.rows_of_instances(existing, touched)}) x
                    where not exists (select 1 from folded_new n
                                      where n.{keys[0]} = x.{keys[0]} and n.{keys[1]} = x.{keys[1]})"""
            )
            io.replace_where(
                self.lake,
                table,
                io.relation_table(merged, schema),
                schema,
                None,
                io.instances_predicate(touched, keys[0]),
                self.version,
            )
            self.con.unregister("folded_new")
            written[table] = data.num_rows

    def _rewrite_small(
        self, table: str, new: str, existing: str, replaced: str, schema: pa.Schema, keys: tuple[str, ...]
    ) -> int:
        """Overwrite a small keyed table (contacts, calls, groups: a row per contact/call/group) with its
        rows not in ``replaced`` plus ``new``. Later windows of a chunked full rebuild touch most keys of
        these tables; one overwrite is far cheaper than a delta-rs predicate listing thousands of keys."""
        on = " and ".join(f"r.{k} = x.{k}" for k in keys)
        rel = self.con.sql(
            f"""select * from {new} union all by name
                select x.* from {existing} x where not exists (select 1 from {replaced} r where {on})"""
        )
        io.overwrite(self.lake, table, rel, schema, None, self.version)
        return self.con.execute(f"select count(*) from {new}").fetchall()[0][0]


def _and(*predicates: str | None) -> str | None:
    """AND of the predicates; None when the last (the key predicate) is None (nothing to replace)."""
    if predicates[-1] is None:
        return None
    return " and ".join(f"({p})" for p in predicates if p)


_OPS_TL_COLUMNS = (
    "action_id",
    "instance_id",
    "contact_key",
    "action",
    "actor_id",
    "attendant_id",
    "team_id",
    "occurred_at",
)
_PARSED = ("p_msg", "p_events", "p_calls", "p_conn", "p_groups", "p_gp", "p_contacts", "p_rejects")


def _in_filter(column: str, values: list[str | None]) -> str | None:
    """``column in (...)`` (plus ``is null``) to prune merge target partitions; None = no pruning."""
    vals = sorted({v for v in values if v is not None})
    parts = []
    if vals:
        quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in vals)
        parts.append(f"{column} in ({quoted})")
    if any(v is None for v in values):
        parts.append(f"{column} is null")
    return " or ".join(parts) if parts else None
