"""A small OpenAI-compatible server on loopback for tests and benchmarks.

``POST /v1/chat/completions`` answers with scripted structured outputs. Behaviours, consumed in
order from :meth:`FakeLLM.push` (then ``default``): ``ok`` (a valid answer from ``responder``),
``500``, ``429``, ``timeout`` (answers after ``timeout_sleep`` seconds), ``malformed`` (content that
is not JSON), ``invalid`` (JSON that breaks the schema), ``length`` (cut at max_tokens).

Every request is recorded, and the server checks that no raw phone number, e-mail or CPF reaches
it (its own patterns, independent of BeaZap's redaction, plus any ``forbidden`` strings a test
registers). A leaking request is answered 400 and recorded in ``violations``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PHONE_LIKE = re.compile(r"\+?\d(?:[\s().\-]{0,3}\d){7,}")  # 8+ digits however separated
EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")
CPF = re.compile(r"\d{3}\.?\d{3}\.?\d{3}-?\d{2}")

Responder = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


def _stable(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def default_responder(request: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A valid answer for BeaZap's analysis or routing schema, derived from the request content."""
    content = "\n".join(m.get("content", "") for m in request.get("messages", []) if m.get("role") == "user")
    h = _stable(content)
    props = schema.get("properties", {})
    if "team_id" in props:
        teams = props["team_id"]["enum"]
        return {
            "team_id": teams[h % len(teams)],
            "urgency": ("low", "medium", "high")[h % 3],
            "priority": 1 + h % 5,
            "confidence": 0.9,
            "reason": "matched the customer's request",
        }
    topics = props["topic"]["enum"]
    topic = next((t for t in topics if t.split("_")[0] in content.lower()), topics[h % len(topics)])
    return {
        "topic": topic,
        "intent": "question",
        "sentiment": round(((h % 201) - 100) / 100, 2),
        "urgency": "low",
        "summary": "The customer asked for help and was answered.",
        "resolution_quality": "resolved",
    }


def _prompt_schema(request: dict[str, Any]) -> dict[str, Any]:
    """Without ``json_schema`` response format, read the schema BeaZap writes into its system prompt."""
    for message in request.get("messages", []):
        if message.get("role") != "system":
            continue
        for line in str(message.get("content", "")).splitlines():
            if line.startswith('{"'):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue
    return {}


class FakeLLM:
    """Start with ``with FakeLLM() as fake:``; ``fake.base_url`` is the ``…/v1`` URL."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        timeout_sleep: float = 2.0,
        default: str = "ok",
        responder: Responder = default_responder,
        model: str = "fake-model",
    ) -> None:
        self.latency = latency
        self.timeout_sleep = timeout_sleep
        self.default = default
        self.responder = responder
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.behaviours: list[str] = []
        self.violations: list[str] = []
        self.forbidden: set[str] = set()
        self._script: deque[str] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control -------------------------------------------------------------------------------
    def push(self, *behaviours: str) -> None:
        with self._lock:
            self._script.extend(behaviours)

    def forbid(self, *values: str) -> None:
        """Raw values (phones, e-mails, CPFs a test planted) that must never arrive."""
        self.forbidden.update(v for v in values if v)

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.behaviours.clear()
            self._script.clear()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                status, body, sleep = fake._handle(raw)
                if sleep:
                    time.sleep(sleep)
                self._send(status, body)

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.request_queue_size = 256
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fake-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- behaviour -----------------------------------------------------------------------------
    def _check_privacy(self, request: dict[str, Any]) -> list[str]:
        problems = []
        for message in request.get("messages", []):
            text = str(message.get("content", ""))
            for name, pattern in (("phone", PHONE_LIKE), ("email", EMAIL), ("cpf", CPF)):
                if pattern.search(text):
                    problems.append(f"{name} in {message.get('role')} message")
            problems.extend(f"planted value in {message.get('role')} message" for v in self.forbidden if v in text)
        return problems

    def _handle(self, raw: bytes) -> tuple[int, dict[str, Any], float]:
        try:
            request = json.loads(raw)
        except json.JSONDecodeError:
            return 400, {"error": {"message": "bad json"}}, 0.0
        problems = self._check_privacy(request)
        with self._lock:
            self.requests.append(request)
            behaviour = self._script.popleft() if self._script else self.default
            self.behaviours.append(behaviour)
            if problems:
                self.violations.extend(problems)
        if problems:
            return 400, {"error": {"message": "personal data reached the LLM", "type": "privacy"}}, 0.0
        latency = self.latency
        if behaviour == "500":
            return 500, {"error": {"message": "upstream failure", "type": "server_error"}}, latency
        if behaviour == "429":
            return 429, {"error": {"message": "rate limited", "type": "rate_limit"}}, latency
        if behaviour == "timeout":
            latency = self.timeout_sleep
        schema = ((request.get("response_format") or {}).get("json_schema") or {}).get("schema") or _prompt_schema(
            request
        )
        finish = "stop"
        if behaviour == "malformed":
            content = '{"topic": "billing", "sentiment": '
        elif behaviour == "invalid":
            answer = self.responder(request, schema)
            answer = {**answer, "sentiment": 7} if "sentiment" in answer else {**answer, "team_id": "nope"}
            content = json.dumps(answer)
        elif behaviour == "length":
            content, finish = '{"topic"', "length"
        else:
            content = json.dumps(self.responder(request, schema), ensure_ascii=False)
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in request.get("messages", [])) // 4
        body = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", self.model),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(content) // 4,
                "total_tokens": prompt_tokens + len(content) // 4,
            },
        }
        return 200, body, latency
