"""Incremental == full: random traffic in random arrival orders and random micro-batches gives the
same silver as one full rebuild (Hypothesis), and re-running with nothing new changes nothing."""

from __future__ import annotations

import itertools
import json
import tempfile
import threading
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_silver_scenarios import T0, ack, edit, message, op, reaction, revoke

from bronze import schema as B  # noqa: N812
from bronze.fastcommit import LocalBlindAppender
from bronze.tables import ensure_tables
from core.settings import Settings
from silver import schema as S  # noqa: N812
from silver.pipeline import build_silver
from storage.lake import Lake
from tests.support.bronze_rows import append_ops, append_webhooks, ops_rows, webhook_rows

CONTACTS = {
    "+5511987654321": dict(jid="5511987654321@s.whatsapp.net"),
    "+5521976543210": dict(jid="552176543210@s.whatsapp.net"),  # written without the 9th digit
    "+5531988887777": dict(jid="204519873310452@lid", alt="553188887777@s.whatsapp.net"),  # LID, phone learned
}
TABLES = (S.MESSAGES, S.CONVERSATIONS, S.CONTACTS, S.MESSAGE_EVENTS, S.OPS_EVENTS, S.CALLS, S.REJECTS)


@st.composite
def traffic(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A small world: messages, acks, edits, reactions, revokes, duplicates and ops actions."""
    webhooks: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    n = draw(st.integers(min_value=3, max_value=14))
    keys = list(CONTACTS)
    for i in range(n):
        key = draw(st.sampled_from(keys))
        c = CONTACTS[key]
        at = T0 + timedelta(minutes=draw(st.integers(min_value=0, max_value=4 * 24 * 60)))
        from_me = draw(st.booleans())
        # the LID contact shows its phone only on some messages (learned at some point)
        alt = c.get("alt") if draw(st.booleans()) else None
        event = "send.message" if from_me and draw(st.booleans()) else "messages.upsert"
        mid = f"M{i:03d}"
        body = message(mid, c["jid"], at, from_me=from_me, alt=alt, event=event, text=f"t{i}")
        webhooks.append(body)
        if draw(st.integers(0, 4)) == 0:
            webhooks.append(body)  # duplicate delivery
        if from_me:
            for status in draw(st.lists(st.sampled_from(["DELIVERY_ACK", "READ", "PLAYED"]), max_size=2)):
                webhooks.append(ack(mid, c["jid"], status))
            if draw(st.integers(0, 3)) == 0:
                actions.append(
                    op(
                        f"S{i}",
                        "message_sent",
                        key,
                        at,
                        actor="bot" if event == "send.message" else "a1",
                        details={"message_id": mid, "automated": event == "send.message"},
                    )
                )
        else:
            if draw(st.integers(0, 4)) == 0:
                webhooks.append(edit(mid, c["jid"], at + timedelta(minutes=1), f"t{i}-edited"))
            if draw(st.integers(0, 5)) == 0:
                webhooks.append(revoke(mid, c["jid"], at + timedelta(minutes=2)))
            if draw(st.integers(0, 4)) == 0:
                emoji = draw(st.sampled_from(["👍", "", "❤"]))
                webhooks.append(reaction(f"R{i}", mid, c["jid"], at + timedelta(minutes=3), emoji, from_me=True))
        if draw(st.integers(0, 3)) == 0:
            kind = draw(st.sampled_from(["assign", "transfer", "resolve", "reopen", "unassign"]))
            actions.append(
                op(
                    f"A{i}",
                    kind,
                    key,
                    at + timedelta(minutes=draw(st.integers(0, 90))),
                    attendant=draw(st.sampled_from(["a1", "a2", None])),
                    team="t1",
                )
            )
    return webhooks, actions


def _snapshot(lake: Lake) -> dict[str, list[str]]:
    out = {}
    for table in TABLES:
        dt = lake.open_or_none(table)
        rows = [] if dt is None else dt.to_pyarrow_table().to_pylist()
        out[table] = sorted(json.dumps(r, default=str, sort_keys=True) for r in rows)
    return out


def _split(items: list[Any], cuts: list[int]) -> list[list[Any]]:
    bounds = sorted({c % (len(items) + 1) for c in cuts} | {0, len(items)})
    return [items[a:b] for a, b in itertools.pairwise(bounds)]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    world=traffic(),
    perm=st.randoms(use_true_random=False),
    cuts=st.lists(st.integers(0, 60), max_size=3),
    ops_cuts=st.lists(st.integers(0, 60), max_size=2),
)
def test_incremental_equals_full(world, perm, cuts, ops_cuts):
    _check_incremental_equals_full(world, perm, cuts, ops_cuts, None)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    world=traffic(),
    perm=st.randoms(use_true_random=False),
    cuts=st.lists(st.integers(0, 60), max_size=3),
    ops_cuts=st.lists(st.integers(0, 60), max_size=2),
)
def test_incremental_equals_full_with_abandonment(world, perm, cuts, ops_cuts):
    """The same with an abandonment limit shorter than the traffic's span, so waiting conversations are
    abandoned (and re-cut) in random places and batches."""
    _check_incremental_equals_full(world, perm, cuts, ops_cuts, Settings(abandon_after_hours=20))


def _check_incremental_equals_full(world, perm, cuts, ops_cuts, cfg: Settings | None) -> None:
    webhooks, actions = world
    order = list(range(len(webhooks)))
    perm.shuffle(order)  # arrival order != event order
    arrivals = [(f"r{pos:05d}", T0 + timedelta(seconds=pos), json.dumps(webhooks[i])) for pos, i in enumerate(order)]
    perm.shuffle(actions)
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(root=tmp)
        batches = _split(arrivals, cuts)
        op_batches = _split(actions, ops_cuts)
        for k in range(max(len(batches), len(op_batches))):
            if k < len(batches) and batches[k]:
                append_webhooks(lake, webhook_rows(batches[k]))
            if k < len(op_batches) and op_batches[k]:
                append_ops(lake, ops_rows(op_batches[k]))
            build_silver(lake, settings=cfg)
        incremental = _snapshot(lake)
        again = build_silver(lake, settings=cfg)  # nothing new: no-op
        assert all(v.get("rows_written", 0) == 0 for k, v in again.items() if k != "_run")
        assert _snapshot(lake) == incremental
        build_silver(lake, full=True, settings=cfg)
        full = _snapshot(lake)
    for table in TABLES:
        only_inc = sorted(set(incremental[table]) - set(full[table]))
        only_full = sorted(set(full[table]) - set(incremental[table]))
        assert incremental[table] == full[table], (table, only_inc, only_full)


def test_a_run_over_empty_bronze_does_not_pin_the_as_of(tmp_path):
    """Silver ran once before bronze held anything (the receiver had created the tables), then old
    traffic was loaded: the incremental runs measure to that traffic's instant, as its full rebuild
    does — not to the wall clock of the empty run (which abandoned every waiting conversation)."""
    lake = Lake(root=str(tmp_path))
    ensure_tables(lake)
    build_silver(lake)
    body = message("M001", CONTACTS["+5511987654321"]["jid"], T0, text="oi")
    append_webhooks(lake, webhook_rows([("r1", T0 + timedelta(seconds=5), json.dumps(body))]))
    stats = build_silver(lake)
    assert stats["_run"]["as_of"] == T0 + timedelta(seconds=5)
    incremental = _snapshot(lake)
    build_silver(lake, full=True)
    assert _snapshot(lake) == incremental


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    world=traffic(),
    perm=st.randoms(use_true_random=False),
    cuts=st.lists(st.integers(0, 60), min_size=1, max_size=4),
)
def test_incremental_equals_full_with_concurrent_appends(world, perm, cuts):
    """Runs interleaved with appends: a receiver-like writer thread (``LocalBlindAppender`` for webhooks,
    delta-rs for ops actions) appends batch k + 1 as silver run k starts; the last incremental state
    equals a full rebuild."""
    webhooks, actions = world
    order = list(range(len(webhooks)))
    perm.shuffle(order)
    arrivals = [(f"r{pos:05d}", T0 + timedelta(seconds=pos), json.dumps(webhooks[i])) for pos, i in enumerate(order)]
    batches = _split(arrivals, cuts)
    op_batches = _split(actions, cuts)
    cond = threading.Condition()
    runs_started = 0
    failures: list[BaseException] = []

    def write(lake: Lake) -> None:
        appender = LocalBlindAppender(
            lake.uri(B.WEBHOOK_EVENTS), B.WEBHOOK_EVENTS_SCHEMA, B.WEBHOOK_EVENTS_PARTITIONS, fsync=False
        )
        try:
            for k in range(max(len(batches), len(op_batches))):
                with cond:  # append batch k once run k has started (the first batch before any run)
                    assert cond.wait_for(lambda k=k: runs_started >= k, timeout=120)
                if k < len(batches) and batches[k]:
                    appender.append(webhook_rows(batches[k]), "test-receiver", k + 1)
                if k < len(op_batches) and op_batches[k]:
                    append_ops(lake, ops_rows(op_batches[k]))
        except BaseException as exc:  # surfaced by the assertion below
            failures.append(exc)

    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(root=tmp)
        ensure_tables(lake)
        writer = threading.Thread(target=write, args=(lake,))
        writer.start()
        while writer.is_alive():
            with cond:
                runs_started += 1
                cond.notify_all()
            build_silver(lake)
        writer.join()
        assert not failures
        build_silver(lake)  # what the writer appended during the last run
        incremental = _snapshot(lake)
        build_silver(lake, full=True)
        full = _snapshot(lake)
    for table in TABLES:
        assert incremental[table] == full[table], table
