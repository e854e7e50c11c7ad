"""docs/quickstart.md runs as written: its fenced ``bash`` blocks, in order, as one shell session in a
scratch folder (a real ``beazap serve`` on a free loopback port, lake + SQLite under the scratch folder),
and the overview and ``beazap sql`` answers equal what the posted webhooks imply and what the doc says."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "docs" / "quickstart.md"
MARK = "@@quickstart-block@@"


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_closes(port: int, deadline_seconds: float) -> bool:
    """Poll until nothing accepts connections on ``port`` (True) or the deadline passes (False)."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return True
        time.sleep(0.2)
    return False


def posted_messages(script: str) -> list[dict]:
    """The webhook bodies the doc posts (each ``post '…'`` line)."""
    return [json.loads(body) for body in re.findall(r"^post '(.*)'$", script, flags=re.M)]


def expected_overview(bodies: list[dict]) -> dict[str, float]:
    """Inbound/outbound counts, conversations (one per contact here) and the median first response."""
    first_in: dict[str, int] = {}
    first_out: dict[str, int] = {}
    for b in bodies:
        key, ts = b["data"]["key"], b["data"]["messageTimestamp"]
        side = first_out if key["fromMe"] else first_in
        side.setdefault(key["remoteJid"], ts)
    frts = [first_out[j] - first_in[j] for j in first_in if first_out.get(j, -1) >= first_in[j]]
    return {
        "messages_inbound": sum(not b["data"]["key"]["fromMe"] for b in bodies),
        "messages_outbound": sum(b["data"]["key"]["fromMe"] for b in bodies),
        "conversations_opened": len(first_in),
        "frt_median_seconds": statistics.median(frts),
    }


def documented_figures(text: str) -> dict[str, float]:
    """The doc's table of figures: | `name` | value | …"""
    return {name: float(value) for name, value in re.findall(r"^\| `(\w+)` \| (\d+) \|", text, flags=re.M)}


def test_quickstart_runs_as_documented(tmp_path: Path) -> None:
    text = QUICKSTART.read_text(encoding="utf-8")
    blocks = shell_blocks(text)
    assert len(blocks) >= 6, "the quickstart lost its shell blocks"
    port = free_port()
    script = "set -euo pipefail\n" + "".join(f"echo {MARK}\n{b}" for b in blocks).replace("8000", str(port))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEAZAP_")}
    env.update(UV_PROJECT=str(ROOT), UV_FROZEN="1", NO_COLOR="1", COLUMNS="200")
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the backgrounded server is in this group: killed below whatever happens
    )
    try:
        out, err = proc.communicate(timeout=240)
        server_stopped = _port_closes(port, deadline_seconds=15)  # the doc's `kill $SERVE_PID` stops it
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    log = tmp_path / ".beazap" / "quickstart" / "serve.log"
    assert proc.returncode == 0, f"{err[-3000:]}\nserve.log:\n{log.read_text()[-2000:] if log.exists() else ''}"
    assert server_stopped, "the server still listens after the quickstart's last block"
    outputs = out.split(MARK + "\n")[1:]
    assert len(outputs) == len(blocks)

    # every webhook was accepted
    bodies = posted_messages("".join(blocks))
    post_block = next(i for i, b in enumerate(blocks) if "post '" in b)
    answers = [json.loads(line) for line in outputs[post_block].splitlines() if line.strip()]
    assert len(answers) == len(bodies) == 5 and all(
        a["status"] == "accepted" and a["event"] == b["event"] for a, b in zip(answers, bodies, strict=True)
    ), answers

    # the overview equals what the posted webhooks imply, and what the doc's table says
    overview_block = next(i for i, b in enumerate(blocks) if "/v1/metrics/overview" in b)
    current = json.loads(outputs[overview_block])["current"]
    expected = expected_overview(bodies)
    assert {k: current[k] for k in expected} == expected
    documented = documented_figures(text)
    assert set(expected) <= set(documented)
    assert {k: current[k] for k in documented} == documented

    # beazap sql: one row per direction with the posted counts
    sql_block = next(i for i, b in enumerate(blocks) if "beazap sql" in b)
    rows = dict(re.findall(r"(inbound|outbound)\s*│\s*(\d+)", outputs[sql_block]))
    assert rows == {
        "inbound": str(expected["messages_inbound"]),
        "outbound": str(expected["messages_outbound"]),
    }
    assert f"`inbound {rows['inbound']}` and `outbound {rows['outbound']}`" in text
