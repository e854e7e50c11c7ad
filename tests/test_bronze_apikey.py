"""Bronze never keeps the body's Evolution ``apikey`` (issue 12, item 7): the receiver stores a keyed
hash instead, and ``beazap scrub-apikeys`` rewrites what earlier versions stored — rows and files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pyarrow as pa
from deltalake import write_deltalake
from fastapi import FastAPI
from typer.testing import CliRunner

from beazap.cli import app as cli
from bronze.redact import hash_apikey
from bronze.schema import CDF_CONFIG, QUARANTINE, WEBHOOK_EVENTS, WEBHOOK_EVENTS_PARTITIONS, WEBHOOK_EVENTS_SCHEMA
from core.settings import Settings
from storage.lake import Lake
from tests.test_receiver import INSTANCE, TOKEN, run, sample_body, sqlite_app, table_rows

__all__ = ["sqlite_app"]

EVOLUTION_KEY = "B6D711FCDE4D4FD5936544120E713976"


def _with_apikey(body: bytes, key: str = EVOLUTION_KEY) -> bytes:
    doc = orjson.loads(body)
    doc["apikey"] = key
    return orjson.dumps(doc)


def _all_bytes(lake_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in lake_dir.rglob("*") if p.is_file())


def _sql(query: str) -> str:
    result = CliRunner().invoke(cli, ["sql", "-c", query])
    assert result.exit_code == 0, result.output
    return result.output


def _sql_counts() -> tuple[int, int]:
    """(rows showing the key in clear, rows with a keyed hash) as ``beazap sql`` sees bronze."""
    out = _sql(
        f"select 'counts', count(*) filter (where contains(payload, '{EVOLUTION_KEY}')) as clear, "
        "count(*) filter (where contains(payload, 'hmac-sha256:')) as hashed from bronze.webhook_events"
    )
    line = next(x for x in out.splitlines() if "counts" in x and "'" not in x)
    clear, hashed = (int(v) for v in line.replace("│", " ").split()[1:3])
    return clear, hashed


def test_receiver_stores_a_keyed_hash_not_the_apikey(sqlite_app: FastAPI, lake: Lake, lake_dir: Path) -> None:
    body = _with_apikey(sample_body())

    async def scenario(client: httpx.AsyncClient) -> None:
        ok = await client.post("/webhooks/evolution", content=body, headers={"apikey": TOKEN})
        assert ok.status_code == 200
        ok = await client.post("/webhooks/evolution", content=body, headers={"apikey": TOKEN})  # duplicate
        assert ok.status_code == 200
        bad = await client.post(  # quarantined (truncated) body with the key in it
            "/webhooks/evolution", content=body[:-5], headers={"apikey": TOKEN}
        )
        assert bad.status_code == 422

    run(sqlite_app, scenario)
    rows = table_rows(lake, WEBHOOK_EVENTS)
    assert len(rows) == 2
    for row in rows:
        stored = orjson.loads(row["payload"])
        assert stored["apikey"] == hash_apikey(EVOLUTION_KEY)
        assert {k: v for k, v in stored.items() if k != "apikey"} == {
            k: v for k, v in orjson.loads(body).items() if k != "apikey"
        }
    assert rows[0]["payload_hash"] == rows[1]["payload_hash"]  # duplicates still hash equal
    [quarantined] = table_rows(lake, QUARANTINE)
    assert EVOLUTION_KEY.encode() not in quarantined["body"]
    assert EVOLUTION_KEY.encode() not in _all_bytes(lake_dir)
    assert _sql_counts() == (0, 2)


def _legacy_bronze(lake: Lake, batches: int = 3) -> None:
    """What an earlier receiver wrote: payloads with the key in clear, over several commits."""
    lake.create(WEBHOOK_EVENTS, WEBHOOK_EVENTS_SCHEMA, partition_by=WEBHOOK_EVENTS_PARTITIONS, configuration=CDF_CONFIG)
    now = datetime.now(UTC)
    for b in range(batches):
        rows = []
        for i in range(4):
            key = EVOLUTION_KEY if i % 2 == 0 else None
            payload = orjson.dumps(
                {"event": "messages.upsert", "instance": INSTANCE, "apikey": key, "data": {"key": {"id": f"L{b}-{i}"}}}
            ).decode()
            rows.append(
                {
                    "receipt_id": f"legacy-{b}-{i}",
                    "received_at": now,
                    "received_date": now.date(),
                    "instance": INSTANCE,
                    "event": "messages.upsert",
                    "source_ip": None,
                    "payload": payload,
                    "payload_hash": "x",
                }
            )
        write_deltalake(
            lake.uri(WEBHOOK_EVENTS), pa.Table.from_pylist(rows, schema=WEBHOOK_EVENTS_SCHEMA), mode="append"
        )


def test_scrub_apikeys_rewrites_rows_and_history(settings: Settings, lake: Lake, lake_dir: Path) -> None:
    _legacy_bronze(lake)
    assert EVOLUTION_KEY.encode() in _all_bytes(lake_dir)
    assert _sql_counts() == (6, 0)
    runner = CliRunner()
    counted = runner.invoke(cli, ["scrub-apikeys", "--dry-run"])
    assert counted.exit_code == 0, counted.output
    assert '"bronze/webhook_events": 6' in counted.output
    done = runner.invoke(cli, ["scrub-apikeys", "--yes"])
    assert done.exit_code == 0, done.output
    assert EVOLUTION_KEY not in done.output
    rows = table_rows(lake, WEBHOOK_EVENTS)
    assert len(rows) == 12  # nothing lost, nothing doubled
    keys = [orjson.loads(r["payload"])["apikey"] for r in rows]
    assert keys.count(hash_apikey(EVOLUTION_KEY)) == 6 and keys.count(None) == 6
    assert EVOLUTION_KEY.encode() not in _all_bytes(lake_dir)  # files and history
    assert _sql_counts() == (0, 6)
    again = runner.invoke(cli, ["scrub-apikeys", "--yes"])  # idempotent
    assert again.exit_code == 0, again.output
    assert len(table_rows(lake, WEBHOOK_EVENTS)) == 12
