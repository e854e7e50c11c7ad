"""Traffic simulator: determinism, Evolution payload shapes, delivery disorder and ground-truth invariants."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beazap.simulator import (
    GroundTruth,
    Simulation,
    SimulationConfig,
    post_deliveries,
    register_instances,
    simulate,
    write_bronze,
)
from beazap.simulator.sinks import receipt_id
from core.identity import conversation_id, normalize_phone

SAMPLES = Path(__file__).resolve().parent / "data" / "evolution"
SMALL = SimulationConfig(seed=7, instances=2, days=4, conversations_per_day=25, start=date(2026, 3, 5))


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(SMALL)


def _fingerprint(s: Simulation) -> list[tuple[str, str, str, str]]:
    return [(d.received_at.isoformat(), d.instance, d.path_suffix, d.payload) for d in s.deliveries]


# --- determinism ---------------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_traffic_and_truth(sim: Simulation, tmp_path: Path) -> None:
    again = simulate(SMALL)
    assert _fingerprint(again) == _fingerprint(sim)
    assert again.ops_events == sim.ops_events
    a = sim.ground_truth.to_json(tmp_path / "a.json").read_bytes()
    b = again.ground_truth.to_json(tmp_path / "b.json").read_bytes()
    assert a == b
    assert [i.token for i in again.instances] == [i.token for i in sim.instances]


def test_different_seeds_differ(sim: Simulation) -> None:
    other = simulate(SimulationConfig(seed=8, instances=2, days=4, conversations_per_day=25, start=date(2026, 3, 5)))
    assert _fingerprint(other) != _fingerprint(sim)
    assert {i.token for i in other.instances}.isdisjoint({i.token for i in sim.instances})


# --- payload shapes ----------------------------------------------------------------------------------


def _shape(value: Any) -> Any:
    """Structure of a JSON value: dict keys → shapes, lists → element shape, scalars → type name."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    if value is None:
        return "null"
    return type(value).__name__


ODD_NUMBERS = ("fileLength", "mediaKeyTimestamp")  # number, string or {"low": …} depending on the release


def _conforms(sample: Any, got: Any, path: str = "") -> list[str]:
    """Differences where ``got`` lacks a key the sample has or a scalar has another type.
    Keys the sample leaves out are allowed (optional fields); null matches anything."""
    problems: list[str] = []
    if isinstance(sample, dict):
        if not isinstance(got, dict):
            return [f"{path}: expected object"]
        if sample and all("@" in k for k in sample):  # keyed by JID (presences)
            assert got and all("@" in k for k in got), path
            first = next(iter(sample.values()))
            return [p for v in got.values() for p in _conforms(first, v, f"{path}.<jid>")]
        for k, v in sample.items():
            if k not in got:
                problems.append(f"{path}.{k}: missing")
            else:
                problems += _conforms(v, got[k], f"{path}.{k}")
    elif isinstance(sample, list):
        if not isinstance(got, list):
            return [f"{path}: expected array"]
        if sample and got:
            problems += _conforms(sample[0], got[0], f"{path}[0]")
    elif path.endswith(ODD_NUMBERS):
        if not isinstance(got, int | str | dict):
            problems.append(f"{path}: {type(got).__name__} is no number encoding")
    elif (
        sample is not None
        and got is not None
        and type(sample) is not type(got)
        and not ({type(sample), type(got)} <= {int, str} and path.endswith("messageTimestamp"))
    ):
        problems.append(f"{path}: {type(got).__name__} instead of {type(sample).__name__}")
    return problems


def _pick(sim: Simulation, name: str) -> list[dict[str, Any]]:
    """Simulated bodies that correspond to sample ``name``."""
    by_event: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in sim.deliveries:
        by_event[d.event].append(d.body)

    def data(b: dict[str, Any]) -> Any:
        return b["data"]

    rules: dict[str, Any] = {
        "call-offer": ("call", lambda b: data(b)["status"] == "offer"),
        "call-timeout": ("call", lambda b: data(b)["status"] == "timeout"),
        "connection-update": ("connection.update", lambda b: data(b)["state"] == "open"),
        "contacts-upsert": ("contacts.upsert", lambda b: isinstance(data(b), list)),
        "group-participants-update": (
            "group-participants.update",
            lambda b: isinstance(data(b)["participants"][0], dict),
        ),
        "groups-upsert": ("groups.upsert", lambda b: True),
        "messages-delete": ("messages.delete", lambda b: True),
        "messages-edited-edit": ("messages.edited", lambda b: data(b)["type"] == "MESSAGE_EDIT"),
        "messages-edited-revoke": ("messages.edited", lambda b: data(b)["type"] == "REVOKE"),
        "messages-update-read": ("messages.update", lambda b: data(b)["status"] == "READ" and "messageId" in data(b)),
        "messages-upsert-group-audio": (
            "messages.upsert",
            lambda b: (
                data(b)["key"]["remoteJid"].endswith("@g.us")
                and "ephemeralMessage" in data(b)["message"]
                and "audioMessage" in data(b)["message"]["ephemeralMessage"]["message"]
                and not data(b)["key"]["fromMe"]
            ),
        ),
        "messages-upsert-image-lid": (
            "messages.upsert",
            lambda b: (
                data(b)["key"]["remoteJid"].endswith("@lid")
                and "remoteJidAlt" in data(b)["key"]
                and "caption" in data(b)["message"].get("imageMessage", {})
                and isinstance(data(b)["message"]["imageMessage"]["fileLength"], dict)
            ),
        ),
        "messages-upsert-reaction": ("messages.upsert", lambda b: "reactionMessage" in data(b)["message"]),
        "messages-upsert-text-inbound": (
            "messages.upsert",
            lambda b: (
                "conversation" in data(b)["message"]
                and not data(b)["key"]["fromMe"]
                and data(b)["key"]["remoteJid"].endswith("@s.whatsapp.net")
            ),
        ),
        "messages-upsert-text-outbound-phone": (
            "messages.upsert",
            lambda b: (
                "conversation" in data(b)["message"]
                and data(b)["key"]["fromMe"]
                and "conversation" in data(b).get("contextInfo", {}).get("quotedMessage", {})
            ),
        ),
        "presence-update": ("presence.update", lambda b: True),
        "send-message-api": ("send.message", lambda b: "conversation" in data(b)["message"]),
        "status-broadcast-ignored": ("messages.upsert", lambda b: data(b)["key"]["remoteJid"] == "status@broadcast"),
    }
    event, pred = rules[name]
    return [b for b in by_event[event] if pred(b)]


@pytest.fixture(scope="module")
def big() -> Simulation:
    return simulate(SimulationConfig(seed=3, instances=3, days=5, conversations_per_day=30, p_edit=0.2, p_revoke=0.1))


@pytest.mark.parametrize("sample_file", sorted(p.name for p in SAMPLES.glob("*.json")))
def test_payloads_have_the_shape_of_the_evolution_samples(big: Simulation, sample_file: str) -> None:
    sample = json.loads((SAMPLES / sample_file).read_text())
    bodies = _pick(big, sample_file.removesuffix(".json"))
    assert bodies, f"the simulator produced nothing like {sample_file}"
    for body in bodies[:50]:
        assert list(body)[: len(sample)] == list(sample) or set(sample) <= set(body)
        assert body["event"] == sample["event"]
        problems = _conforms(sample, body)
        assert not problems, f"{sample_file}: {problems[:5]}"


def test_quirks_of_real_traffic_are_present(sim: Simulation) -> None:
    upserts = [d.body["data"] for d in sim.deliveries if d.event == "messages.upsert"]
    stamps = Counter(type(u["messageTimestamp"]).__name__ for u in upserts)
    assert stamps["int"] and stamps["str"]  # number and string timestamps
    jids = [u["key"]["remoteJid"] for u in upserts]
    assert any(j.endswith("@lid") for j in jids)
    assert any(j.startswith("55") and len(j.split("@")[0]) == 12 for j in jids)  # without the 9th digit
    messages = [u["message"] for u in upserts]
    assert any("ephemeralMessage" in m for m in messages)
    assert any(isinstance(v.get("fileLength"), dict) for m in messages for v in m.values() if isinstance(v, dict))
    assert {d.path_suffix for d in sim.deliveries} >= {"", "/messages-upsert"}
    # date_time is the server's local wall clock with a Z, not UTC
    for d in sim.deliveries[:200]:
        data = d.body["data"]
        if d.event == "messages.upsert" and "messageTimestamp" in data:
            wall = datetime.strptime(d.body["date_time"], "%Y-%m-%dT%H:%M:%S.%fZ")
            event_at = datetime.fromtimestamp(int(data["messageTimestamp"]), UTC).replace(tzinfo=None)
            assert timedelta(hours=-6) < wall - event_at < timedelta(hours=-1)


def test_duplicates_out_of_order_and_late_deliveries(sim: Simulation) -> None:
    payloads = Counter(d.payload for d in sim.deliveries)
    assert any(n >= 2 for n in payloads.values()), "no duplicate deliveries"
    assert sim.deliveries == sorted(sim.deliveries, key=lambda d: d.received_at)
    # an ack that arrives before its message
    seen_messages: set[str] = set()
    early_acks = 0
    for d in sim.deliveries:
        data = d.body["data"]
        if d.event in ("messages.upsert", "send.message"):
            seen_messages.add(data["key"]["id"])
        elif d.event == "messages.update" and data["keyId"] not in seen_messages:
            early_acks += 1
    assert early_acks > 0, "no status ack ever arrived before its message"
    late = [
        d
        for d in sim.deliveries
        if d.event == "messages.upsert"
        and d.received_at - datetime.fromtimestamp(int(d.body["data"]["messageTimestamp"]), UTC) > timedelta(minutes=30)
    ]
    assert late, "no late delivery"
    # API-sent messages echoed as messages.upsert (same key) exist
    sent = {d.body["data"]["key"]["id"] for d in sim.deliveries if d.event == "send.message"}
    echoed = {d.body["data"]["key"]["id"] for d in sim.deliveries if d.event == "messages.upsert"}
    assert sent & echoed


# --- ground truth ----------------------------------------------------------------------------------


def check_truth(s: Simulation) -> None:
    """Invariants every ground truth must satisfy (used by the example test and the property test)."""
    cfg = s.config
    g = s.ground_truth
    timeout = timedelta(hours=cfg.session_timeout_hours)
    reopen = timedelta(hours=cfg.reopen_window_hours)
    abandon = timedelta(hours=cfg.abandon_after_hours)
    convs = g.conversation_by_id()
    assert len(convs) == len(g.conversations), "conversation ids are unique"
    direct = [m for m in g.messages if m.chat_type == "direct"]
    per_conv: dict[str, Counter[str]] = defaultdict(Counter)
    for m in direct:
        assert m.conversation_id in convs
        per_conv[m.conversation_id][m.direction] += 1
        assert m.contact_key == convs[m.conversation_id].contact_key
    for m in g.messages:
        if m.chat_type == "group":
            assert m.conversation_id is None
        if m.automated:
            assert m.direction == "outbound" and m.via == "api" and m.sender_attendant_id is None
    by_contact: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for c in g.conversations:
        assert c.conversation_id == conversation_id(c.instance_id, c.contact_key, c.opening_message_id)
        assert c.inbound_count == per_conv[c.conversation_id]["inbound"]
        assert c.outbound_count == per_conv[c.conversation_id]["outbound"]
        assert c.inbound_count + c.outbound_count >= 1
        assert c.contact_key.endswith("@lid") or normalize_phone(c.contact_key) == c.contact_key
        assert c.opened_at <= c.last_message_at
        if c.first_response_at is not None:
            assert c.origin == "inbound"
            assert c.first_response_at > c.opened_at
            assert c.first_responder_id
            fr = next(m for m in direct if m.message_id == c.first_response_message_id)
            assert fr.direction == "outbound" and not fr.automated
        now = g.as_of
        waiting = c.origin == "inbound" and c.first_response_at is None  # never expires by inactivity
        if c.status == "resolved":
            assert c.resolved_at is not None and c.resolved_by
            limit = c.opened_at + abandon if waiting else c.last_message_at + timeout
            assert c.last_message_at < c.resolved_at <= limit
            assert c.closed_at == c.resolved_at and c.expired_at is None
        elif c.status == "expired":
            assert not waiting and now - c.last_message_at > timeout
            assert c.expired_at == c.last_message_at + timeout and c.closed_at == c.last_message_at
        elif c.status == "abandoned":
            assert waiting and now - c.opened_at > abandon
            assert c.expired_at == c.closed_at == c.opened_at + abandon
        else:
            assert c.status == "open" and c.closed_at is None
            assert (now - c.opened_at <= abandon) if waiting else (now - c.last_message_at <= timeout)
        if c.first_assigned_at is not None:
            assert c.first_assigned_at >= c.opened_at
        by_contact[(c.instance_id, c.contact_key)].append(c)
    for convs_of in by_contact.values():
        convs_of.sort(key=lambda c: c.opened_at)
        for prev, nxt in itertools.pairwise(convs_of):
            assert nxt.previous_conversation_id == prev.conversation_id
            end = {"resolved": prev.resolved_at, "abandoned": prev.closed_at}.get(
                prev.status, prev.last_message_at + timeout
            )
            assert nxt.opened_at > end, "conversations of one contact never overlap"
            expect_reopen = (
                nxt.origin == "inbound" and prev.status == "resolved" and nxt.opened_at - prev.resolved_at <= reopen
            )
            assert nxt.is_reopen == expect_reopen
            assert prev.reopened == expect_reopen
        assert convs_of[0].previous_conversation_id is None and not convs_of[0].is_reopen
        assert not convs_of[-1].reopened
    # volumes add up to the per-message truth
    assert sum(r["messages"] for r in g.daily_volume) == len(g.messages)
    assert sum(r["messages"] for r in g.hourly_volume) == len(g.messages)
    assert sum(r["opened"] for r in g.daily_conversations) == len(g.conversations)
    # the ops actions name existing conversations
    for row in s.ops_events:
        if row["conversation_id"] is not None:
            assert row["conversation_id"] in convs
            assert convs[row["conversation_id"]].contact_key == row["contact_key"]


def test_ground_truth_invariants(sim: Simulation) -> None:
    check_truth(sim)
    g = sim.ground_truth
    statuses = Counter(c.status for c in g.conversations)
    assert statuses["resolved"] and statuses["expired"] and statuses["open"]
    assert Counter(c.origin for c in g.conversations)["outbound"] > 0
    assert any(c.is_reopen for c in g.conversations)
    assert any(c.contact_key.endswith("@lid") for c in g.conversations)
    assert any(c.first_responder_id == "unattributed" for c in g.conversations)
    assert any(c.first_responder_id and c.first_responder_id.startswith("att-") for c in g.conversations)
    assert any(m.revoked for m in g.messages) and any(m.edited for m in g.messages)
    assert any(m.automated for m in g.messages)
    assert {m.kind for m in g.messages} >= {"text", "image", "audio", "document"}
    assert Counter(c.outcome for c in g.calls).keys() >= {"accepted", "missed"}
    actions = Counter(r["action"] for r in sim.ops_events)
    assert actions.keys() >= {"route", "assign", "transfer", "resolve", "message_sent"}


def test_automated_greetings_never_stop_the_clock(sim: Simulation) -> None:
    g = sim.ground_truth
    by_id = {m.message_id: m for m in g.messages}
    sent = {json.loads(r["details"])["message_id"]: r for r in sim.ops_events if r["action"] == "message_sent"}
    for mid, row in sent.items():
        m = by_id[mid]
        assert m.via == "api" and m.automated == json.loads(row["details"])["automated"]
        if not m.automated:
            assert m.sender_attendant_id == row["actor_id"]
    for c in g.conversations:
        if c.first_response_at is not None:
            assert not by_id[c.first_response_message_id].automated


def test_business_hours_shape_the_traffic(sim: Simulation) -> None:
    tz_of = {i.id: ZoneInfo(i.timezone) for i in sim.instances}
    hours = Counter(
        m.event_at.astimezone(tz_of[m.instance_id]).hour for m in sim.ground_truth.messages if m.direction == "inbound"
    )
    daytime = sum(n for h, n in hours.items() if 8 <= h < 18)
    assert daytime > 0.6 * sum(hours.values())


def test_ground_truth_json_round_trip(sim: Simulation, tmp_path: Path) -> None:
    path = sim.ground_truth.to_json(tmp_path / "truth.json")
    back = GroundTruth.from_json(path)
    assert back.conversations == sim.ground_truth.conversations
    assert back.messages == sim.ground_truth.messages
    assert back.calls == sim.ground_truth.calls
    assert back.as_of == sim.ground_truth.as_of
    assert back.daily_volume == sim.ground_truth.daily_volume


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    days=st.integers(1, 3),
    rate=st.floats(2, 20),
    start=st.dates(date(2025, 1, 1), date(2027, 12, 31)),
)
def test_truth_invariants_hold_for_any_seed(seed: int, days: int, rate: float, start: date) -> None:
    s = simulate(SimulationConfig(seed=seed, instances=1, days=days, conversations_per_day=rate, start=start))
    check_truth(s)


# --- sinks -------------------------------------------------------------------------------------------


def test_write_bronze_lands_every_delivery_and_action(lake: Any) -> None:
    from deltalake import DeltaTable

    s = simulate(SimulationConfig(seed=11, instances=1, days=1, conversations_per_day=10))
    result = write_bronze(lake, s, batch_rows=400)
    assert result["webhook_events"] == len(s.deliveries)
    table = DeltaTable(lake.uri("bronze/webhook_events")).to_pyarrow_table().sort_by("receipt_id")
    rows = table.to_pylist()
    assert len(rows) == len(s.deliveries)
    assert len({r["receipt_id"] for r in rows}) == len(rows)
    assert [r["payload"] for r in rows] == [d.payload for d in s.deliveries]  # receipt order == arrival order
    for r in rows[:100]:
        assert r["payload_hash"] == hashlib.sha256(r["payload"].encode()).hexdigest()
        assert r["received_date"] == r["received_at"].date()
        assert json.loads(r["payload"])["instance"] == r["instance"]
    ops = DeltaTable(lake.uri("bronze/ops_events")).to_pyarrow_table()
    assert ops.num_rows == len(s.ops_events)
    assert receipt_id(datetime(2026, 3, 2, tzinfo=UTC), 1) < receipt_id(datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC), 0)


class _Recorder(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str | None, bytes]]] = []
    fail_first: ClassVar[set[bytes]] = set()
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        with self.lock:
            if body not in self.fail_first:
                self.fail_first.add(body)
                code = 503 if len(self.fail_first) % 10 == 0 else 200
            else:
                code = 200
            if code == 200:
                self.received.append((self.path, self.headers.get("apikey"), body))
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.received = []
    _Recorder.fail_first = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_post_deliveries_over_http_with_tokens_suffixes_and_retries(recorder: str) -> None:
    s = simulate(SimulationConfig(seed=5, instances=3, days=1, conversations_per_day=8, p_by_events_instance=0.5))
    report = post_deliveries(recorder, s, concurrency=8)
    assert report["accepted"] == len(s.deliveries) and report["failed"] == 0
    got = _Recorder.received
    assert Counter(b for _, _, b in got) == Counter(d.payload.encode() for d in s.deliveries)
    tokens = {i.id: i.token for i in s.instances}
    for path, apikey, body in got:
        doc = json.loads(body)
        assert apikey == tokens[doc["instance"]]
        assert path.startswith("/webhooks/evolution")
    assert any(p != "/webhooks/evolution" for p, _, _ in got)  # byEvents URLs
    assert any(p == "/webhooks/evolution/messages-upsert" for p, _, _ in got)


def test_register_instances_is_idempotent(engine: Any) -> None:
    import sqlalchemy as sa

    from storage.instances import load_credentials
    from storage.secrets import token_matches

    s = simulate(SimulationConfig(seed=1, instances=3, days=1, conversations_per_day=1))
    first = register_instances(engine, s)
    again = register_instances(engine, s)
    assert first["instances_added"] == 3 and again["instances_added"] == 0
    creds = load_credentials(engine)
    for inst in s.instances:
        assert token_matches(inst.token, creds[inst.id].webhook_token_hash)
        assert creds[inst.id].account_id == inst.account_id
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from attendants")).scalar() == len(s.attendants)
        assert conn.execute(sa.text("select count(*) from teams")).scalar() == len(s.teams)
    assert again["token_conflicts"] == []


def test_register_instances_never_rotates_a_token(engine: Any) -> None:
    """Another seed reuses the instance names with new tokens: the registered tokens stay (a real
    sender may use them) and the clash is reported instead."""
    from storage.instances import load_credentials
    from storage.secrets import token_matches

    first = simulate(SimulationConfig(seed=1, instances=3, days=1, conversations_per_day=1))
    register_instances(engine, first)
    other = simulate(SimulationConfig(seed=2, instances=3, days=1, conversations_per_day=1))
    assert [i.id for i in other.instances] == [i.id for i in first.instances]
    assert all(a.token != b.token for a, b in zip(first.instances, other.instances, strict=True))
    result = register_instances(engine, other)
    creds = load_credentials(engine)
    assert all(token_matches(i.token, creds[i.id].webhook_token_hash) for i in first.instances)
    assert not any(token_matches(i.token, creds[i.id].webhook_token_hash) for i in other.instances)
    assert sorted(result["token_conflicts"]) == sorted(i.id for i in first.instances)


def test_bulk_mode_streams_bronze_rows(lake: Any) -> None:
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from beazap.simulator.bulk import write_bronze_bulk

    cfg = SimulationConfig(seed=3, instances=2, days=3)
    result = write_bronze_bulk(lake, cfg, target_events=6000)
    table = DeltaTable(lake.uri("bronze/webhook_events")).to_pyarrow_table()
    assert table.num_rows == result["webhook_events"]
    assert 0.6 * 6000 < table.num_rows < 1.5 * 6000
    assert pc.count_distinct(table["receipt_id"]).as_py() == table.num_rows
    assert pc.count_distinct(table["payload_hash"]).as_py() < table.num_rows  # duplicates
    events = Counter(table["event"].to_pylist())
    assert events.keys() >= {"messages.upsert", "send.message", "messages.update"}
    for payload, digest in zip(
        table["payload"].to_pylist()[:500], table["payload_hash"].to_pylist()[:500], strict=True
    ):
        doc = json.loads(payload)
        assert doc["event"] in events and doc["instance"].endswith(("-01", "-02"))
        assert hashlib.sha256(payload.encode()).hexdigest() == digest
    ops = DeltaTable(lake.uri("bronze/ops_events")).to_pyarrow_table()
    assert ops.num_rows == result["ops_events"] > 0
    assert set(ops["action"].to_pylist()) >= {"assign", "resolve", "message_sent"}
    # same seed, same rows — also when days are built by two worker processes
    other = type(lake)(lake.root + "-2")
    again = write_bronze_bulk(other, cfg, target_events=6000, workers=2)
    assert again["webhook_events"] == result["webhook_events"]
    table2 = DeltaTable(other.uri("bronze/webhook_events")).to_pyarrow_table()
    assert sorted(table2["receipt_id"].to_pylist()) == sorted(table["receipt_id"].to_pylist())
    assert sorted(table2["payload_hash"].to_pylist()) == sorted(table["payload_hash"].to_pylist())
    ops2 = DeltaTable(other.uri("bronze/ops_events")).to_pyarrow_table()
    assert sorted(ops2["action_id"].to_pylist()) == sorted(ops["action_id"].to_pylist())


def test_cli_simulate_writes_truth_and_bronze(settings: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from beazap.cli import app

    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        ["simulate", "--instances", "1", "--days", "1", "--seed", "4", "--conversations-per-day", "5",
         "--out-dir", str(out), "--bronze"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "events per type" in res.output and "messages.upsert" in res.output
    truth = GroundTruth.from_json(out / "ground_truth.json")
    assert truth.conversations
    assert json.loads((out / "instances.json").read_text())[0]["token"].startswith("whk_sim_")
    bad = CliRunner().invoke(app, ["simulate", "--start", "yesterday"])
    assert bad.exit_code != 0
    conflict = CliRunner().invoke(app, ["simulate", "--post", "http://127.0.0.1:9", "--bronze"])
    assert conflict.exit_code != 0


@settings(max_examples=300, deadline=None)
@given(
    t=st.floats(1.6e9, 1.9e9, allow_nan=False),
    tz=st.sampled_from(["America/Sao_Paulo", "America/Manaus", "Europe/Lisbon", "Australia/Lord_Howe", "Asia/Kolkata"]),
)
def test_bulk_date_time_equals_the_rich_simulators(t: float, tz: str) -> None:
    from beazap.simulator.bulk import _Clock
    from beazap.simulator.payloads import local_wall_clock

    zone = ZoneInfo(tz)
    assert _Clock(zone)(t) == local_wall_clock(t, zone)


def test_bulk_receipt_ids_sort_by_time_then_sequence() -> None:
    from beazap.simulator.bulk import _ulid

    ids = [_ulid(1_772_442_907_000 + i // 3, i) for i in range(3000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(len(x) == 26 and set(x) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for x in ids)
    assert ids[0][:10] == receipt_id(datetime.fromtimestamp(1_772_442_907, UTC), 0)[:10]
