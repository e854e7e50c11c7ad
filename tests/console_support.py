"""Test helpers for the console: a live server on loopback and an SSE reader thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import uvicorn

from api.app import create_app


class LiveServer:
    """The BeaZap app under uvicorn on a free loopback port, in a thread."""

    def __init__(self, engine: Any, settings: Any) -> None:
        self.app = create_app(settings)
        self.app.state.engine = engine
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        poll(lambda: self.server.started, what="server start")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def poll(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Wait for ``predicate`` to return something truthy (a deadline, not a sleep as synchronization)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what}: not reached before the deadline")


class SseReader(threading.Thread):
    """Reads one SSE stream into ``events`` (dicts with ``id``, ``event`` and parsed ``data``)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.events: list[dict[str, Any]] = []
        self.status: int | None = None
        self.connected = threading.Event()
        self._response: httpx.Response | None = None
        self._closed = False

    def run(self) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(30, read=None)) as client,
                client.stream("GET", self.url, headers=self.headers) as resp,
            ):
                self._response, self.status = resp, resp.status_code
                self.connected.set()
                frame: dict[str, Any] = {}
                for line in resp.iter_lines():
                    if self._closed:
                        return
                    if not line:
                        if "data" in frame:
                            frame["data"] = orjson.loads(frame["data"])
                            self.events.append(frame)
                        frame = {}
                    elif line.startswith(("id:", "event:", "data:")):
                        key, _, value = line.partition(":")
                        frame[key] = value.strip()
        except httpx.HTTPError:
            pass
        finally:
            self.connected.set()

    def close(self) -> None:
        self._closed = True
        if self._response is not None:
            self._response.close()
        self.join(timeout=10)

    def conversation_ids(self) -> list[str]:
        return [e["data"]["conversation"]["id"] for e in self.events if e.get("event") == "conversation"]


class WebhookReceiver:
    """A fake alert-webhook receiver on loopback: records each POST, answers the queued statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses or [])
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.statuses.pop(0) if outer.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
