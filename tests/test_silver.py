"""Silver normalization of every Evolution sample event (tests/data/evolution) and phone cases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from conftest import SAMPLES_DIR
from hypothesis import given, settings
from hypothesis import strategies as st
from test_silver_scenarios import T0, edit, envelope, message

from core.identity import normalize_phone
from silver import checks
from silver.pipeline import PhoneNormalizer, build_silver
from storage.duck import connect
from tests.support.bronze_rows import append_webhooks, webhook_rows

INST = "loja-centro"


def _land(lake, names_or_bodies, start=T0):
    rows = []
    for i, item in enumerate(names_or_bodies):
        body = (
            (SAMPLES_DIR / f"{item}.json").read_text() if isinstance(item, str) and not item.startswith("{") else item
        )
        rows.append((f"r{start.timestamp():.0f}-{i:04d}", start + timedelta(seconds=i), body))
    return append_webhooks(lake, webhook_rows(rows))


def _rows(lake, table, where="true"):
    con = connect(lake)
    rel = con.sql(f"select * from silver.{table} where {where}")
    cols = rel.columns
    return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]


@pytest.fixture
def sample_lake(lake):
    names = sorted(p.stem for p in SAMPLES_DIR.glob("*.json"))
    _land(lake, names)
    stats = build_silver(lake)
    return lake, stats


def test_text_inbound_and_outbound(sample_lake):
    lake, _ = sample_lake
    m = {r["message_id"]: r for r in _rows(lake, "messages")}
    inbound = m["3A5F1C2B9D8E7F6A5B4C"]
    assert inbound["direction"] == "inbound" and inbound["kind"] == "text" and inbound["chat_type"] == "direct"
    assert inbound["contact_key"] == "+5511987654321" and inbound["contact_phone"] == "+5511987654321"
    assert inbound["event_at"] == datetime.fromtimestamp(1772442907, UTC)
    assert inbound["event_month"] == "2026-03" and inbound["via"] == "customer" and inbound["source"] == "ios"
    out = m["3EB0A1B2C3D4E5F6A7B8C9"]
    assert out["direction"] == "outbound" and out["via"] == "app" and out["status"] == "server_ack"
    assert out["quoted_message_id"] == "3A5F1C2B9D8E7F6A5B4C"
    assert out["conversation_id"] == inbound["conversation_id"] is not None


def test_edit_keeps_original_text(sample_lake):
    lake, _ = sample_lake
    (row,) = _rows(lake, "messages", "message_id = '3A5F1C2B9D8E7F6A5B4C'")
    assert row["edited"] is True
    assert row["text"] == "Oi, meu pedido 4822 ainda não chegou"
    assert row["original_text"] == "Oi, meu pedido 4821 ainda não chegou"
    assert row["edited_at"] == datetime.fromtimestamp(1772442990, UTC)


def test_revoke_and_delete_mark_target_even_without_content(sample_lake):
    lake, _ = sample_lake
    (row,) = _rows(lake, "messages", "message_id = '3A77E2D1C0B9A8F7E6D5'")
    # the revoked message itself never arrived: a stub row, not counted in volume (event_at NULL)
    assert row["revoked"] is True and row["event_at"] is None and row["kind"] is None
    events = _rows(lake, "message_events", "message_id = '3A77E2D1C0B9A8F7E6D5'")
    assert sorted(e["event_type"] for e in events) == ["delete", "revoke"]


def test_reaction_attached_not_a_message(sample_lake):
    lake, _ = sample_lake
    ids = {r["message_id"] for r in _rows(lake, "messages", "event_at is not null")}
    assert "3A77E2D1C0B9A8F7E6D5" not in ids  # the reaction's own id is no message
    (target,) = _rows(lake, "messages", "message_id = '3EB0F00D5EED1234ABCD99'")
    assert target["reaction_count"] == 1 and target["last_reaction"] == "👍"
    assert target["reactions"][0]["actor_key"] == "5511987654321@s.whatsapp.net"


def test_send_message_ack_and_via_api(sample_lake):
    lake, _ = sample_lake
    (row,) = _rows(lake, "messages", "message_id = '3EB0F00D5EED1234ABCD99'")
    assert row["via"] == "api" and row["status"] == "read" and row["text"] == "Seu pedido sai hoje para entrega."


def test_image_lid_with_alt_phone_and_odd_numbers(sample_lake):
    lake, _ = sample_lake
    (row,) = _rows(lake, "messages", "message_id = 'AC4E9F0B1D2C3E4F5A6B7C8D9E0F1A2B'")
    assert row["kind"] == "image" and row["media_mimetype"] == "image/jpeg" and row["media_size"] == 183402
    assert row["text"] == "foto da caixa amassada"
    # 12-digit Brazilian mobile (no 9th digit) in remoteJidAlt → unified E.164 with the 9
    assert row["contact_key"] == "+5531988887777" and row["contact_lid"] == "204519873310452@lid"
    assert row["event_at"] == datetime.fromtimestamp(1772443502, UTC)  # string timestamp accepted
    contacts = {c["contact_key"]: c for c in _rows(lake, "contacts")}
    assert contacts["+5531988887777"]["lid"] == "204519873310452@lid"


def test_group_ephemeral_audio(sample_lake):
    lake, _ = sample_lake
    (row,) = _rows(lake, "messages", "message_id = '3AB9C8D7E6F5A4B3C2D1'")
    assert row["chat_type"] == "group" and row["kind"] == "audio" and row["media_seconds"] == 14
    assert row["participant_key"] == "+5521976543210" and row["contact_key"] is None
    assert row["conversation_id"] is None
    convs = _rows(lake, "conversations")
    assert all(c["chat_jid"] != "120363041234567890@g.us" for c in convs)


def test_status_broadcast_ignored(sample_lake):
    lake, _ = sample_lake
    assert _rows(lake, "messages", "message_id = '3A0011223344556677889'") == []
    assert _rows(lake, "messages", "chat_jid like '%broadcast'") == []


def test_groups_participants_calls_connection(sample_lake):
    lake, _ = sample_lake
    (group,) = _rows(lake, "groups")
    assert group["subject"] == "Atacado - Clientes VIP" and group["size"] == 2
    assert group["owner_key"] == "+5511940001111"
    parts = _rows(lake, "group_participants")
    added = [p for p in parts if p["action"] == "add"]
    assert [p["participant_key"] for p in added] == ["+5521912345678"] and added[0]["author_key"] == "+5511940001111"
    assert {p["participant_key"] for p in parts if p["action"] == "snapshot"} == {"+5511940001111", "+5521976543210"}
    (call,) = _rows(lake, "calls")
    assert call["outcome"] == "missed" and call["last_status"] == "timeout" and call["is_video"] is False
    assert call["offered_at"] == datetime(2026, 3, 2, 13, 5, 11, tzinfo=UTC)
    assert call["ended_at"] == datetime(2026, 3, 2, 13, 5, 41, tzinfo=UTC)
    assert call["contact_key"] == "+5511987654321"
    (conn,) = _rows(lake, "connection_events")
    assert conn["state"] == "open" and conn["status_reason"] == 200


def test_conversation_from_samples(sample_lake):
    lake, _ = sample_lake
    conv = {c["contact_key"]: c for c in _rows(lake, "conversations")}["+5511987654321"]
    assert conv["origin"] == "inbound" and conv["opening_message_id"] == "3A5F1C2B9D8E7F6A5B4C"
    assert conv["first_response_at"] == datetime.fromtimestamp(1772443150, UTC)
    assert conv["first_responder_id"] == "unattributed"
    assert conv["inbound_count"] == 1 and conv["outbound_count"] == 2 and conv["status"] == "open"


def test_rejects_and_checks(lake):
    bad_json = '{"event": "messages.upsert", "instance": "loja-centro", "data": {'
    no_key = json.dumps(envelope("messages.upsert", {"message": {"conversation": "x"}, "messageTimestamp": 1}))
    _land(lake, [bad_json, no_key, json.dumps(message("OK1", "5511987654321@s.whatsapp.net", T0))])
    stats = build_silver(lake)
    rejects = _rows(lake, "rejects")
    assert sorted(r["reason"] for r in rejects) == ["invalid json", "message without key.id"]
    assert stats["silver/rejects"]["rejects"] == 2
    assert len(_rows(lake, "messages")) == 1
    assert checks.message_id_duplicates(lake) == 0
    rate = checks.reject_rate(lake)
    assert rate.rejects == 2 and rate.bronze_rows == 3 and rate.rate == pytest.approx(2 / 3)


def test_edit_before_message_and_duplicates(lake):
    jid = "5511987654321@s.whatsapp.net"
    body = message("M1", jid, T0, text="first")
    _land(lake, [edit("M1", jid, T0 + timedelta(minutes=1), "second")])
    build_silver(lake)
    (stub,) = _rows(lake, "messages")
    assert stub["event_at"] is None and stub["edited"] is True
    _land(lake, [body, body, message("M1", jid, T0, text="first", event="send.message")], start=T0 + timedelta(hours=1))
    build_silver(lake)
    (row,) = _rows(lake, "messages")
    assert row["text"] == "second" and row["original_text"] == "first" and row["event_at"] == T0
    assert row["via"] == "api"
    assert len(_rows(lake, "conversations")) == 1


def test_view_once_and_unknown_content(lake):
    jid = "5511987654321@s.whatsapp.net"
    view_once = message("V1", jid, T0)
    view_once["data"]["message"] = {
        "viewOnceMessageV2": {
            "message": {
                "videoMessage": {"mimetype": "video/mp4", "seconds": "9", "fileLength": "123456", "caption": "olha"}
            }
        }
    }
    poll = message("P1", jid, T0 + timedelta(seconds=5))
    poll["data"]["message"] = {"pollCreationMessageV3": {"name": "?", "options": []}}
    odd = message("O1", jid, T0 + timedelta(seconds=6))
    odd["data"]["message"] = {"somethingNew": {"x": 1}}
    _land(lake, [json.dumps(view_once), json.dumps(poll), json.dumps(odd)])
    build_silver(lake)
    m = {r["message_id"]: r for r in _rows(lake, "messages")}
    assert (m["V1"]["kind"], m["V1"]["media_seconds"], m["V1"]["media_size"], m["V1"]["text"]) == (
        "video",
        9,
        123456,
        "olha",
    )
    assert m["P1"]["kind"] == "poll" and m["O1"]["kind"] == "other"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5511987654321@s.whatsapp.net", "+5511987654321"),
        ("551187654321@s.whatsapp.net", "+5511987654321"),  # old 12-digit mobile → 9th digit added
        ("551133334444@s.whatsapp.net", "+551133334444"),  # landline (starts with 3) stays
        ("5511987654321:12@s.whatsapp.net", "+5511987654321"),  # device suffix
        ("+55 (11) 98765-4321", "+5511987654321"),
        ("14155552671@s.whatsapp.net", "+14155552671"),
        ("204519873310452@lid", None),
        ("120363041234567890@g.us", None),
        ("123", None),
    ],
)
def test_phone_normalization(raw, expected):
    assert normalize_phone(raw) == expected


def test_lid_learned_later_merges_conversation(lake):
    lid, phone_jid = "204519873310452@lid", "553188887777@s.whatsapp.net"
    _land(lake, [message("L1", lid, T0), message("L2", lid, T0 + timedelta(minutes=5), from_me=True)])
    build_silver(lake)
    (conv,) = _rows(lake, "conversations")
    assert conv["contact_key"] == lid
    _land(lake, [message("L3", lid, T0 + timedelta(minutes=10), alt=phone_jid)], start=T0 + timedelta(hours=1))
    build_silver(lake)
    (conv,) = _rows(lake, "conversations")
    assert conv["contact_key"] == "+5531988887777" and conv["opening_message_id"] == "L1"
    assert conv["inbound_count"] == 2 and conv["outbound_count"] == 1
    msgs = _rows(lake, "messages")
    assert {m["contact_key"] for m in msgs} == {"+5531988887777"}
    assert {m["conversation_id"] for m in msgs} == {conv["conversation_id"]}
    assert [c["contact_key"] for c in _rows(lake, "contacts")] == ["+5531988887777"]


_SHARED_NORMALIZER = PhoneNormalizer()


@given(
    st.one_of(
        st.from_regex(r"\A\+?[0-9 ()-]{6,18}\Z"),
        st.from_regex(r"\A55[1-9][1-9][2-9][0-9]{7,8}(:[0-9]{1,2})?@s\.whatsapp\.net\Z"),
        st.from_regex(r"\A[1-9][0-9]{7,14}@(s\.whatsapp\.net|c\.us|lid|g\.us)\Z"),
    )
)
@settings(max_examples=400, deadline=None)
def test_batch_phone_normalizer_equals_identity(raw):
    """silver's per-pattern cached normalizer gives exactly core.identity.normalize_phone."""
    assert _SHARED_NORMALIZER(raw) == normalize_phone(raw)  # shared: patterns cached across examples
