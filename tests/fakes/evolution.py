"""A fake Evolution API server on loopback for tests (``http.server`` in a thread).

It implements ``POST /message/sendText/{instance}`` and ``POST /webhook/set/{instance}`` with the
``apikey`` header check, can be told to fail (5xx, 4xx with Evolution's error body, slow answers),
and for every accepted send produces the webhooks Evolution would post (``send.message`` then a
``messages.update`` ack): it POSTs them to the configured webhook URL with the configured headers,
or keeps them in :attr:`FakeEvolution.outbox` when no webhook is set.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


@dataclass
class FakeEvolution:
    api_key: str = "evo-key"
    base_url: str = ""
    sent: list[dict[str, Any]] = field(default_factory=list)  # every message actually sent
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)  # instance -> webhook config
    outbox: list[dict[str, Any]] = field(default_factory=list)  # envelopes not posted anywhere
    posted: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (status, envelope) posted
    fail_next: list[int] = field(default_factory=list)  # statuses to answer before succeeding
    delay_next: list[float] = field(default_factory=list)  # seconds to sleep before answering
    requests: int = 0
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests += 1
            delay = self.delay_next.pop(0) if self.delay_next else 0.0
            failure = self.fail_next.pop(0) if self.fail_next else None
        if delay:
            time.sleep(delay)
        if headers.get("apikey") != self.api_key:
            return 401, {"status": 401, "error": "Unauthorized", "response": {"message": "Unauthorized"}}
        if failure is not None:
            return failure, {"status": failure, "error": "Internal Server Error", "response": {"message": ["boom"]}}
        parts = path.strip("/").split("/")
        if parts[:2] == ["message", "sendText"] and len(parts) == 3:
            return self._send(parts[2], body)
        if parts[:2] == ["webhook", "set"] and len(parts) == 3:
            self.webhooks[parts[2]] = body.get("webhook", {})
            return 201, {"webhook": {"instanceName": parts[2], "webhook": body.get("webhook")}}
        return 404, {"status": 404, "error": "Not Found", "response": {"message": ["Cannot POST " + path]}}

    def _send(self, instance: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        number = str(body.get("number", ""))
        if not number or number.startswith("000"):
            return 400, {
                "status": 400,
                "error": "Bad Request",
                "response": {"message": [{"exists": False, "jid": f"{number}@s.whatsapp.net", "number": number}]},
            }
        message_id = f"3EB0FAKE{next(self._ids):012d}"
        jid = number if "@" in number else f"{number}@s.whatsapp.net"
        ts = int(time.time())
        message = {
            "key": {"remoteJid": jid, "fromMe": True, "id": message_id},
            "pushName": "Você",
            "status": "PENDING",
            "message": {"conversation": body.get("text")},
            "messageType": "conversation",
            "messageTimestamp": ts,
            "instanceId": "fake-uuid",
            "source": "unknown",
        }
        self.sent.append({"instance": instance, "number": number, "text": body.get("text"), "id": message_id})
        self._emit(instance, "send.message", message)
        self._emit(
            instance,
            "messages.update",
            {"keyId": message_id, "remoteJid": jid, "fromMe": True, "status": "SERVER_ACK", "instanceId": "fake-uuid"},
        )
        return 201, message

    def _emit(self, instance: str, event: str, data: dict[str, Any]) -> None:
        envelope = {
            "event": event,
            "instance": instance,
            "data": data,
            "destination": "",
            "date_time": "2026-03-02T09:15:07.120Z",
            "sender": "5511940001111@s.whatsapp.net",
            "server_url": self.base_url,
            "apikey": None,
        }
        hook = self.webhooks.get(instance)
        if not hook or not hook.get("url"):
            self.outbox.append(envelope)
            return
        envelope["destination"] = hook["url"]
        url = hook["url"].rstrip("/") + ("/" + event.replace(".", "-") if hook.get("byEvents") else "")
        try:
            status = httpx.post(url, json=envelope, headers=hook.get("headers") or {}, timeout=5).status_code
        except httpx.HTTPError:
            status = 0
        self.posted.append((status, envelope))


def _handler(fake: FakeEvolution) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            status, answer = fake.handle(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *_args: object) -> None:
            return

    return Handler


@contextmanager
def running_fake_evolution(api_key: str = "evo-key") -> Iterator[FakeEvolution]:
    """Start a fake Evolution server on 127.0.0.1 (random port) for the duration of the block."""
    fake = FakeEvolution(api_key=api_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
