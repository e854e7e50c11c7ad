"""Check the Dagster UI in headless Chromium: the asset graph renders with every BeaZap asset.

    uv run python -m tests.support.dagster_ui_check --out .beazap/ui   # screenshots + a JSON report

Starts ``dagster-webserver -w workspace.yaml`` on loopback with a throw-away ``DAGSTER_HOME``
(``orchestration/dagster.yaml``), waits for it, asks its GraphQL API for the asset nodes, then
screenshots the global lineage and each layer's graph with Chromium (Debian package
``chromium``) and checks the rendered DOM names the assets. Exit code 0 when everything renders.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=20000",
]
WIDE = "--window-size=1800,1100"
MIN_RENDERED_BYTES = 60_000  # a blank "Loading…" page is ~50 kB; a drawn graph is more
PAGES = {
    "lineage": "/asset-groups",
    "bronze": "/locations/beazap/asset-groups/bronze/lineage",
    "silver": "/locations/beazap/asset-groups/silver/lineage",
    "gold": "/locations/beazap/asset-groups/gold/lineage",
}


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/server_info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)  # polling for readiness, bounded by the deadline
    raise TimeoutError("dagster-webserver did not answer in time")


def _asset_nodes(base: str) -> list[dict[str, Any]]:
    query = "{ assetNodes { assetKey { path } groupName } }"
    response = httpx.post(f"{base}/graphql", json={"query": query}, timeout=60)
    response.raise_for_status()
    return response.json()["data"]["assetNodes"]


def _chromium(binary: str, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    command = [binary, *CHROMIUM_FLAGS, *args]  # fixed flags and our own loopback URL
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _check_page(
    binary: str, base: str, name: str, path: str, assets: list[str], out: Path, timeout: float
) -> dict[str, Any]:
    """Dump the page's DOM until its assets are named (or attempts run out), then screenshot it.

    A screenshot of a page still "Loading…" is small and nearly blank: retake it until it is not.
    """
    expected = [a for a in assets if name == "lineage" or a.startswith(name + "/")]
    # Tall enough for every node of a layer's graph to be in view (the graph draws what is visible).
    size = WIDE if name == "lineage" else f"--window-size=1800,{max(1100, 340 * len(expected) + 500)}"
    shown: list[str] = []
    dom = ""
    for _attempt in range(3):
        dom = _chromium(binary, [size, "--dump-dom", base + path], timeout).stdout
        shown = [a for a in expected if f">{a.split('/')[-1]}<" in dom]
        if name == "lineage" or len(shown) == len(expected):
            break
    shot = out / f"dagster_{name}.png"
    for _attempt in range(3):
        _chromium(binary, [size, f"--screenshot={shot}", base + path], timeout)
        if shot.exists() and shot.stat().st_size > MIN_RENDERED_BYTES:
            break
    return {
        "screenshot": str(shot),
        "bytes": shot.stat().st_size if shot.exists() else 0,
        "assets_in_dom": len(shown),
        "assets_expected": len(expected),
        "error_in_dom": "PythonError" in dom,
    }


def run(out: Path, timeout: float = 120.0) -> dict[str, Any]:
    """Start the webserver, screenshot the pages into ``out`` and return the report."""
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (apt-get install -y chromium)")
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="dagster_home_"))
    shutil.copy(ROOT / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    report: dict[str, Any] = {"url": base, "pages": {}}
    try:
        _wait_ready(base, proc, timeout)
        nodes = _asset_nodes(base)
        report["assets"] = sorted("/".join(n["assetKey"]["path"]) for n in nodes)
        report["groups"] = sorted({n["groupName"] for n in nodes})
        for name, path in PAGES.items():
            report["pages"][name] = _check_page(binary, base, name, path, report["assets"], out, timeout)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the webserver's own process group (start_new_session)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)
    report["ok"] = all(
        p["bytes"] > 10_000
        and not p["error_in_dom"]
        and (name == "lineage" or p["assets_in_dom"] == p["assets_expected"])
        for name, p in report["pages"].items()
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".beazap/ui"), help="Folder for the screenshots.")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    report = run(args.out, args.timeout)
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
