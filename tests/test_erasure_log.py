"""Erasure and the Delta log: incremental silver never writes a phone into a commit's metadata, an
erasure leaves nothing in any file (``_delta_log`` included), and a tenant's verification only
answers about its own instances (no oracle on another tenant's contacts)."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from bronze import schema as B  # noqa: N812
from governance import erasure
from storage.lake import Lake
from tests import governance_data as gd
from tests.test_erasure import SUBJECT_DIGITS, _build, _lake_leftovers


def _subject_writes_again(lake: Lake, scenario: gd.Scenario) -> None:
    """One more message of the subject in bronze, after silver was built (the next run is incremental)."""
    received_at, body = next(
        (at, b)
        for at, b in scenario.envelopes
        if b["event"] == "messages.upsert" and "5511987654321" in json.dumps(b) and b["instance"] == "loja-centro"
    )
    body = copy.deepcopy(body)
    body["data"]["key"]["id"] = "AGAIN0001"
    if "messageTimestamp" in body["data"]:
        body["data"]["messageTimestamp"] = int(body["data"]["messageTimestamp"]) + 60
    received_at = received_at + timedelta(minutes=1)
    payload = json.dumps(body, ensure_ascii=False)
    row = {
        "receipt_id": "r-again-1",
        "received_at": received_at,
        "received_date": received_at.date(),
        "instance": body["instance"],
        "event": body["event"],
        "source_ip": "127.0.0.1",
        "payload": payload,
        "payload_hash": hashlib.sha256(payload.encode()).hexdigest(),
    }
    lake.write(B.WEBHOOK_EVENTS, pa.Table.from_pylist([row], schema=B.WEBHOOK_EVENTS_SCHEMA))


def _commit_metadata(lake_dir: Path) -> list[str]:
    """Every ``commitInfo`` entry of every table's log."""
    found = []
    for path in lake_dir.rglob("_delta_log/*.json"):
        found += [line for line in path.read_text().splitlines() if line.startswith('{"commitInfo"')]
    return found


@pytest.fixture
def incremental(lake: Lake, engine: Any) -> gd.Scenario:
    from silver.pipeline import build_silver

    scenario = _build(lake, engine)
    _subject_writes_again(lake, scenario)
    assert build_silver(lake)  # incremental: replaces the subject's contact row
    return scenario


def test_incremental_silver_keeps_personal_data_out_of_commit_metadata(
    incremental: gd.Scenario, lake_dir: Path
) -> None:
    metadata = _commit_metadata(lake_dir / "silver")
    assert any('"predicate"' in line for line in metadata)  # replace-where commits were written
    phones = [p.lstrip("+") for p in incremental.phones] + SUBJECT_DIGITS
    leaks = [line[:200] for line in metadata if any(p in line for p in phones)]
    assert leaks == []


def test_erasure_after_incremental_runs_leaves_nothing_in_any_file(
    incremental: gd.Scenario, lake: Lake, engine: Any, lake_dir: Path
) -> None:
    assert not erasure.verify_erasure(lake, engine, gd.SUBJECT_PHONE).clean
    erasure.erase_contact(lake, engine, gd.SUBJECT_PHONE)
    assert _lake_leftovers(lake_dir, SUBJECT_DIGITS) == []
    assert erasure.verify_erasure(lake, engine, gd.SUBJECT_PHONE).clean


def test_erasure_strips_a_phone_older_versions_wrote_into_commit_metadata(
    incremental: gd.Scenario, lake: Lake, engine: Any, lake_dir: Path
) -> None:
    """Tables written by earlier versions may hold a phone in a commit's predicate: erasure covers it."""
    log = sorted((lake_dir / "silver" / "contacts" / "_delta_log").glob("*.json"))[-1]
    lines = log.read_text().splitlines()
    planted = []
    for line in lines:
        if line.startswith('{"commitInfo"'):
            action = json.loads(line)
            action["commitInfo"].setdefault("operationParameters", {})["predicate"] = (
                "(instance_id = 'loja-centro' and contact_key in ('+5511987654321'))"
            )
            line = json.dumps(action, separators=(",", ":"))
        planted.append(line)
    log.write_text("\n".join(planted) + "\n")
    erasure.erase_contact(lake, engine, gd.SUBJECT_PHONE)
    assert _lake_leftovers(lake_dir, SUBJECT_DIGITS) == []
    assert erasure.verify_erasure(lake, engine, gd.SUBJECT_PHONE).clean


def test_tenant_verification_is_not_an_oracle_on_other_tenants(
    incremental: gd.Scenario, lake: Lake, engine: Any, settings: Any
) -> None:
    from api.app import create_app
    from storage.tokens import create_token

    app = create_app(settings)
    app.state.engine = engine
    client = TestClient(app)
    acme = {"Authorization": f"Bearer {create_token(engine, 'acme', 'admin')}"}
    globex = {"Authorization": f"Bearer {create_token(engine, 'globex', 'admin')}"}
    # the subject wrote only to loja-centro (acme): globex's verification has nothing to report
    other = client.post("/v1/admin/erasures/verify", json={"phone": gd.SUBJECT_PHONE}, headers=globex)
    assert other.status_code == 200 and other.json()["clean"] is True, other.json()
    assert other.json()["lake"] == [] and other.json()["store"] == {}
    own = client.post("/v1/admin/erasures/verify", json={"phone": gd.SUBJECT_PHONE}, headers=acme)
    assert own.json()["clean"] is False  # acme does have the contact
    assert client.post("/v1/admin/erasures", json={"phone": gd.SUBJECT_PHONE}, headers=acme).status_code == 200
    own = client.post("/v1/admin/erasures/verify", json={"phone": gd.SUBJECT_PHONE}, headers=acme)
    assert own.json()["clean"] is True, own.json()
