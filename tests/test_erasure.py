"""LGPD erasure: one contact removed from bronze, silver, gold and the ops store, provably.

The lake and ops store are built by the real pipeline (bronze scenario → silver → live projector →
gold); the checks after erasure read every file under the lake folder and every ops-store row
independently of the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from typer.testing import CliRunner

from governance import erasure
from governance.subject import ERASED, Scrubber, Subject, phone_variants
from storage.instances import add_instance
from storage.lake import Lake
from storage.maintenance import read_table
from storage.tables import erasure_audit
from tests import governance_data as gd

SUBJECT_DIGITS = ["5511987654321", gd.SUBJECT_OLD_FORM, gd.SUBJECT_LID]


# -- identifiers ---------------------------------------------------------------------------------------
def test_phone_variants_cover_the_brazilian_ninth_digit() -> None:
    assert phone_variants("+55 (11) 98765-4321") == {"5511987654321", "551187654321"}
    assert phone_variants("551187654321") == {"5511987654321", "551187654321"}
    assert phone_variants("+1 415 555 2671") == {"14155552671"}
    with pytest.raises(ValueError):
        phone_variants("12")


def test_scrubber_rewrites_jids_and_text() -> None:
    subject = Subject.from_phone(gd.SUBJECT_PHONE)
    subject.add_lids([f"{gd.SUBJECT_LID}@lid"])
    scrubber = Scrubber(subject)
    scrubber.rebuild()
    payload = json.dumps(
        {
            "data": {
                "key": {"remoteJid": f"{gd.SUBJECT_LID}@lid", "remoteJidAlt": "551187654321:3@s.whatsapp.net"},
                "pushName": "Mariana",
                "message": {"conversation": "texto"},
                "messageTimestamp": 1772442907,
            },
            "sender": "5511940001111@s.whatsapp.net",
        }
    )
    out = json.loads(scrubber.json_text(payload) or "")
    assert out["data"]["key"] == {"remoteJid": scrubber.pseudo_jid, "remoteJidAlt": scrubber.pseudo_jid}
    assert out["data"]["pushName"] == ERASED and out["data"]["message"]["conversation"] == ERASED
    assert out["data"]["messageTimestamp"] == 1772442907
    assert out["sender"] == "5511940001111@s.whatsapp.net"  # the business number is not the subject
    assert scrubber.text("+5511987654321", "contact_phone") is None
    assert scrubber.text("+5511987654321", "contact_key") == scrubber.pseudo_jid
    assert scrubber.text("x 55119876543210 y") == "x 55119876543210 y"  # longer digit run: not the subject


@hsettings(max_examples=200, deadline=None)
@given(
    prefix=st.text(alphabet="ab :@+-{}\"'", max_size=8),
    suffix=st.text(alphabet="ab :@.-{}\"'", max_size=8),
    form=st.sampled_from(
        ["5511987654321", "+5511987654321", "551187654321@s.whatsapp.net", "5511987654321:7@s.whatsapp.net"]
    ),
    other=st.from_regex(r"\A[0-9a-z@. ]{0,20}\Z"),
)
def test_scrubbed_strings_never_keep_the_subject(prefix: str, suffix: str, form: str, other: str) -> None:
    scrubber = Scrubber(Subject.from_phone(gd.SUBJECT_PHONE))
    out = scrubber.text(prefix + form + suffix) or ""
    assert not scrubber.matches(out)
    assert "987654321" not in out and "87654321" not in out.replace(scrubber.pseudonym, "")
    if not scrubber.matches(other):
        assert scrubber.text(other) == other  # values without the subject are untouched


# -- the whole lake + ops store ----------------------------------------------------------------------------
def _build(lake: Lake, engine: sa.Engine) -> gd.Scenario:
    from gold.runner import build_gold
    from live.projector import run_once
    from silver.pipeline import build_silver

    for instance, account in gd.INSTANCES.items():
        add_instance(engine, instance, account)
    scenario = gd.build()
    scenario.write(lake)
    build_silver(lake)
    run_once(lake, engine)
    build_gold(lake, engine=engine)
    return scenario


def _counts(lake: Lake, engine: sa.Engine) -> dict[str, Any]:
    con = duckdb.connect()
    for name in ("silver/messages", "silver/conversations", "gold/daily_volume", "gold/conversation_facts"):
        con.register(name.replace("/", "_"), read_table(lake, name))
    out: dict[str, Any] = {
        "messages": con.execute("select count(*), count(distinct message_id) from silver_messages").fetchone(),
        "by_kind": con.execute(
            "select kind, direction, count(*) from silver_messages group by all order by all"
        ).fetchall(),
        "conversations": con.execute(
            "select status, count(*) from silver_conversations group by all order by all"
        ).fetchall(),
        "volume": con.execute("select day, sum(messages) from gold_daily_volume group by all order by all").fetchall(),
        "facts": con.execute(
            "select opened_day, count(*) from gold_conversation_facts group by all order by all"
        ).fetchall(),
    }
    with engine.connect() as conn:
        for table in ("conversations", "messages", "actions"):
            out[f"ops_{table}"] = conn.execute(sa.text(f"select count(*) from {table}")).scalar_one()
    return out


def _lake_leftovers(root: Path, needles: list[str]) -> list[str]:
    """Every file under the lake (data, change data, logs, checkpoints) that contains a needle."""
    found = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            text = json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)
        else:
            text = path.read_bytes().decode("utf-8", "replace")
        if any(n in text for n in needles):
            found.append(str(path.relative_to(root)))
    return found


def _store_leftovers(engine: sa.Engine, needles: list[str]) -> list[str]:
    meta = sa.MetaData()
    meta.reflect(bind=engine)
    found = []
    with engine.connect() as conn:
        for name, table in meta.tables.items():
            for row in conn.execute(sa.select(table)):
                text = json.dumps(dict(row._mapping), default=str, ensure_ascii=False)
                if any(n in text for n in needles):
                    found.append(name)
    return found


def _quarantine(lake: Lake, body: bytes) -> None:
    from datetime import UTC, datetime

    import pyarrow as pa

    from bronze import schema as bronze_schema

    now = datetime.now(UTC)
    lake.create(bronze_schema.QUARANTINE, bronze_schema.QUARANTINE_SCHEMA, bronze_schema.QUARANTINE_PARTITIONS)
    row = {
        "receipt_id": "q1",
        "received_at": now,
        "received_date": now.date(),
        "instance": "loja-centro",
        "event": "messages.upsert",
        "source_ip": "127.0.0.1",
        "reason": "invalid JSON",
        "body": body,
    }
    lake.write(bronze_schema.QUARANTINE, pa.Table.from_pylist([row], schema=bronze_schema.QUARANTINE_SCHEMA))


def test_erasure_across_all_layers(lake: Lake, engine: sa.Engine, lake_dir: Path) -> None:
    scenario = _build(lake, engine)
    # A malformed delivery in quarantine (not JSON) that names the subject.
    _quarantine(lake, b'{"remoteJid": "5511987654321@s.whatsapp.net", "conversation": "' + gd.SUBJECT_TEXT.encode())
    needles = [*SUBJECT_DIGITS, gd.SUBJECT_TEXT, "Mariana Subject", "foto do documento da Mariana"]
    other_phone = scenario.phones[1].lstrip("+")
    assert _lake_leftovers(lake_dir, needles), "the scenario must put the subject in the lake"
    assert _store_leftovers(engine, SUBJECT_DIGITS), "…and in the ops store"
    before = _counts(lake, engine)
    assert not erasure.verify_erasure(lake, engine, gd.SUBJECT_PHONE).clean
    # The metrics API's serving store holds a copy of gold (contact keys included).
    from gold.serving import store as serving_store
    from gold.serving.reader import GoldReader

    reader = GoldReader(lake, background=False)
    reader.versions()
    reader.close()
    served = [p for p in serving_store.default_root(lake).iterdir() if p.is_dir()]
    assert served, "the API's reader must have built a serving store"

    planned = erasure.erase_contact(lake, engine, gd.SUBJECT_PHONE, dry_run=True)
    assert planned.lake["bronze/webhook_events"] > 0 and _lake_leftovers(lake_dir, needles)

    report = erasure.erase_contact(lake, engine, "551187654321", requested_by="dpo@example.com")
    assert report.lids == 1 and report.conversations >= 3
    assert {
        "bronze/webhook_events",
        "bronze/quarantine",
        "silver/messages",
        "silver/conversations",
        "gold/conversation_facts",
    } <= set(report.lake)
    assert {"conversations", "messages"} <= set(report.store)

    # Nothing remains anywhere, including old files, change data and the log's statistics; the
    # serving stores built from the old gold are gone (the next reader builds one from the new gold).
    assert not any(p.exists() for p in served)
    assert _lake_leftovers(lake_dir, needles) == []
    assert _store_leftovers(engine, [*SUBJECT_DIGITS, gd.SUBJECT_TEXT, "Mariana Subject"]) == []
    verified = erasure.verify_erasure(lake, engine, gd.SUBJECT_PHONE)
    assert verified.clean and verified.audits == 1
    # Other contacts are untouched.
    assert _lake_leftovers(lake_dir, [other_phone])
    # Aggregates are unchanged.
    assert _counts(lake, engine) == before

    # The audit record proves the erasure without the personal data.
    with engine.connect() as conn:
        audit = dict(conn.execute(sa.select(erasure_audit)).one()._mapping)
    assert audit["status"] == "completed" and audit["verification"]["clean"] is True
    assert audit["requested_by"] == "dpo@example.com"
    dumped = json.dumps(audit, default=str)
    assert not any(n in dumped for n in needles)

    # Rebuilding silver from the anonymized bronze gives the same tables (conversation ids included).
    from silver.pipeline import build_silver

    ids = sorted(read_table(lake, "silver/conversations").column("conversation_id").to_pylist())
    build_silver(lake)  # incremental after erasure: still readable and unchanged
    build_silver(lake, full=True)
    rebuilt = sorted(read_table(lake, "silver/conversations").column("conversation_id").to_pylist())
    assert rebuilt == ids
    assert _counts(lake, engine)["messages"] == before["messages"]


def test_erase_cli_and_verify_exit_codes(lake: Lake, settings: Any) -> None:
    from beazap.cli import app
    from storage import migrate
    from storage.db import get_engine

    engine = get_engine(settings)
    migrate.upgrade(engine)
    _build(lake, engine)
    runner = CliRunner()
    dirty = runner.invoke(app, ["erase", "--verify", "--phone", gd.SUBJECT_PHONE])
    assert dirty.exit_code == 2
    bad = runner.invoke(app, ["erase", "--phone", "12", "--yes"])
    assert bad.exit_code != 0
    done = runner.invoke(app, ["erase", "--phone", gd.SUBJECT_PHONE, "--yes"])
    assert done.exit_code == 0, done.output
    assert "5511987654321" not in done.output and json.loads(done.output[done.output.index("{") :])["lids"] == 1
    clean = runner.invoke(app, ["erase", "--verify", "--phone", gd.SUBJECT_PHONE])
    assert clean.exit_code == 0, clean.output


def test_admin_api_erases_only_the_callers_instances(lake: Lake, settings: Any) -> None:
    from api.app import create_app
    from storage import migrate
    from storage.db import get_engine
    from storage.tokens import create_token

    engine = get_engine(settings)
    migrate.upgrade(engine)
    _build(lake, engine)
    app = create_app(settings)
    app.state.engine = engine
    client = TestClient(app)
    acme_admin = create_token(engine, "acme", "admin")
    globex_admin = create_token(engine, "globex", "admin")
    acme_reader = create_token(engine, "acme", "read-only")

    assert client.post("/v1/admin/erasures", json={"phone": gd.SUBJECT_PHONE}).status_code == 401
    denied = client.post(
        "/v1/admin/erasures", json={"phone": gd.SUBJECT_PHONE}, headers={"Authorization": f"Bearer {acme_reader}"}
    )
    assert denied.status_code == 403 and "error" in denied.json()
    invalid = client.post(
        "/v1/admin/erasures", json={"phone": "12345678x"}, headers={"Authorization": f"Bearer {acme_admin}"}
    )
    assert invalid.status_code == 422

    # globex does not own loja-centro, where the subject wrote: nothing of it changes.
    other = client.post(
        "/v1/admin/erasures", json={"phone": gd.SUBJECT_PHONE}, headers={"Authorization": f"Bearer {globex_admin}"}
    )
    assert other.status_code == 200 and other.json()["lake"] == {}
    check = client.post(
        "/v1/admin/erasures/verify", json={"phone": gd.SUBJECT_PHONE}, headers={"Authorization": f"Bearer {acme_admin}"}
    )
    assert check.json()["clean"] is False

    done = client.post(
        "/v1/admin/erasures", json={"phone": gd.SUBJECT_PHONE}, headers={"Authorization": f"Bearer {acme_admin}"}
    )
    assert done.status_code == 200
    body = done.json()
    assert body["lake"]["bronze/webhook_events"] > 0 and "5511987654321" not in json.dumps(body)
    check = client.post(
        "/v1/admin/erasures/verify", json={"phone": gd.SUBJECT_PHONE}, headers={"Authorization": f"Bearer {acme_admin}"}
    )
    assert check.status_code == 200 and check.json()["clean"] is True


def test_erasure_on_simulated_traffic(lake: Lake, settings: Any, lake_dir: Path) -> None:
    """The simulator's shapes (LIDs, reactions in nested columns, groups, calls, acks) are all covered."""
    from datetime import date

    from beazap.simulator import SimulationConfig, register_instances, simulate, write_bronze
    from gold.runner import build_gold
    from live.projector import run_once
    from silver.pipeline import build_silver
    from storage import migrate
    from storage.db import get_engine

    engine = get_engine(settings)
    migrate.upgrade(engine)
    sim = simulate(SimulationConfig(seed=11, instances=2, days=3, start=date(2026, 3, 2), conversations_per_day=20))
    register_instances(engine, sim)
    write_bronze(lake, sim)
    build_silver(lake)
    run_once(lake, engine)
    build_gold(lake, engine=engine)
    con = duckdb.connect()
    con.register("m", read_table(lake, "silver/messages", columns=["contact_phone", "contact_lid"]))
    phone, lid = con.execute(
        "select contact_phone, max(contact_lid) from m where contact_phone is not null "
        "group by 1 order by count(*) desc, max(contact_lid) nulls last limit 1"
    ).fetchone()
    needles = sorted(phone_variants(phone)) + ([lid.split("@")[0]] if lid else [])
    before = _counts(lake, engine)
    assert _lake_leftovers(lake_dir, needles)

    erasure.erase_contact(lake, engine, phone)

    assert _lake_leftovers(lake_dir, needles) == []
    assert _store_leftovers(engine, needles) == []
    assert erasure.verify_erasure(lake, engine, phone).clean
    assert _counts(lake, engine) == before
