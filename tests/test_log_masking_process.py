"""No secret, phone or message text in any byte a real ``beazap serve`` writes (both renderers, DEBUG),
even when a request carrying a bearer token ends in an unhandled error with a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa

from storage import migrate
from storage.db import make_engine
from storage.instances import add_instance
from storage.tokens import create_token
from tests.test_receiver_process import ROOT, free_port

INSTANCE = "loja-logs"
WEBHOOK_TOKEN = "whk_log_masking_webhook_token_0123456789"
WRONG_TOKEN = "whk_log_masking_wrong_token_9876543210"
EVOLUTION_APIKEY = "EVO-APIKEY-4F2A9C7E1B3D5F6A"
PHONE = "5511987654321"
TEXT = "quero cancelar meu pedido urgente por favor"


def _webhook(apikey: str) -> bytes:
    return orjson.dumps(
        {
            "event": "messages.upsert",
            "instance": INSTANCE,
            "apikey": apikey,
            "data": {
                "key": {"remoteJid": f"{PHONE}@s.whatsapp.net", "fromMe": False, "id": "LOGS1"},
                "pushName": "Cliente",
                "message": {"conversation": TEXT},
                "messageTimestamp": 1760000000,
            },
        }
    )


@pytest.mark.parametrize("json_logs", [False, True], ids=["console", "json"])
def test_no_secret_in_any_byte_written(tmp_path: Path, json_logs: bool) -> None:
    db_url = f"sqlite:///{tmp_path / 'ops.db'}"
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    add_instance(engine, INSTANCE, "acme", token=WEBHOOK_TOKEN)
    api_token = create_token(engine, "acme", "admin")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEAZAP_", "PROMETHEUS_"))}
    env.update(
        BEAZAP_LAKE_URI=str(tmp_path / "lake"),
        BEAZAP_DATABASE_URL=db_url,
        BEAZAP_SECRET_KEY_FILE=str(tmp_path / "secret.key"),
        BEAZAP_LOG_LEVEL="DEBUG",
        BEAZAP_LOG_JSON="true" if json_logs else "false",
    )
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "beazap", "serve", "--port", str(port), "--access-log"],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, err.read_text()[-2000:]
                assert time.monotonic() < deadline, "server not ready within 60 s"
                time.sleep(0.1)  # polling readiness against a deadline
            with httpx.Client(base_url=base, timeout=30) as client:
                ok = client.post(
                    "/webhooks/evolution", content=_webhook(EVOLUTION_APIKEY), headers={"apikey": WEBHOOK_TOKEN}
                )
                assert ok.status_code == 200, ok.text
                refused = client.post(
                    "/webhooks/evolution", content=_webhook(WRONG_TOKEN), headers={"apikey": WRONG_TOKEN}
                )
                assert refused.status_code == 401
                with engine.begin() as conn:  # break token resolution: the next API call fails unhandled
                    conn.execute(sa.text("DROP TABLE api_tokens"))
                crashed = client.get(
                    f"/v1/conversations?contact=%2B{PHONE}&q={TEXT}&token={api_token}",
                    headers={"Authorization": f"Bearer {api_token}", "apikey": EVOLUTION_APIKEY},
                )
                assert crashed.status_code == 500
                assert api_token not in crashed.text
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    engine.dispose()
    written = out.read_bytes() + err.read_bytes()
    secrets = [WEBHOOK_TOKEN, WRONG_TOKEN, EVOLUTION_APIKEY, api_token, api_token.split("_", 1)[1], PHONE, TEXT]
    secrets += [PHONE[-9:], PHONE[2:], "cancelar meu pedido"]
    leaked = [s for s in secrets if s.encode() in written]
    assert leaked == [], written.decode(errors="replace")[-4000:]
    assert b"Traceback" in written, "the error was logged with its traceback"
