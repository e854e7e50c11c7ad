"""Dashboard benchmark: the overview page in Chromium (Performance API) and its compressed weight.

    uv run python -m benchmarks.dashboard                # a year, 50 instances, ~10M messages
    uv run python -m benchmarks.dashboard --scale 0.05   # a quick run

1. Generates a simulated year of silver with the metrics benchmark's DuckDB generator
   (``benchmarks.metrics``), builds gold, registers the instances and a supervisor user.
2. Serves the real app (``api.app.create_app``: gold loaded, in-process metrics cache) with uvicorn in
   its own process on loopback.
3. Drives Debian's Chromium with Playwright, logged in as the supervisor, and measures with the
   browser's Performance API the time from navigation start until the charts are drawn (the
   ``beazap-charts-drawn`` mark, set after the HTML, the data and the uPlot chart are done):
   - cold: a fresh browser context (empty HTTP cache) and a filter set the server has not answered
     yet (metrics cache miss), rotating over instances;
   - warm: the same page again in the same context (browser and metrics cache warm);
   - filter change: from one instance's overview to another's in the same context (browser cache
     warm, metrics cache cold) — the "page change with filters".
   The baseline, measured in the same run, is the bare ``GET /v1/metrics/overview`` JSON for the same
   filters over HTTP (httpx, metrics cache cold): the page's cost is reported as a ratio to it.
4. Page weight: the sum of ``transferSize`` (bytes on the wire, gzip) of the document and every
   resource of a cold overview load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import httpx

from benchmarks.metrics import YEAR_START, generate, percentile, serve, write_silver
from benchmarks.workdir import scratch_dir

EMAIL, PASSWORD = "bench@dashboard.example", "bench-password"


def bench_app() -> Any:
    """uvicorn factory: the real app with gold loaded up front and the default in-process cache."""
    from api.app import create_app
    from core.settings import get_settings
    from gold.serving.reader import GoldReader
    from storage.db import get_engine
    from storage.lake import Lake

    settings = get_settings()
    app = create_app(settings)
    app.state.engine = get_engine(settings)
    app.state.gold_reader = GoldReader(Lake.from_settings(settings), refresh_seconds=3600, background=False)
    app.state.gold_reader.refresh(force=True)
    return app


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise SystemExit("Chromium is required: apt-get install -y chromium")


READY_MS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const mark = performance.getEntriesByName('beazap-charts-drawn')[0];
  return {ready: mark ? mark.startTime : null, load: nav.loadEventEnd, html: nav.responseEnd};
}"""
WEIGHT = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  return {document: nav.transferSize, resources: res.map(r => [r.name, r.transferSize, r.decodedBodySize])};
}"""


def login(context: Any, base: str) -> None:
    page = context.new_page()
    page.goto(f"{base}/app/login")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(lambda url: "/app/login" not in url)
    page.close()


def measure(page: Any, url: str) -> dict[str, float]:
    page.goto(url)
    page.wait_for_function("document.documentElement.dataset.chartsDrawn === 'true'")
    return page.evaluate(READY_MS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="Fraction of the full year's conversations.")
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rounds", type=int, default=20, help="Timed page loads per case.")
    args = parser.parse_args()
    per_day = max(1, round(55 * args.scale))

    workdir = scratch_dir("dashboard-")
    os.environ["BEAZAP_SECRET_KEY_FILE"] = str(workdir / "secret.key")
    from core.settings import Settings
    from gold.runner import build_gold
    from storage import migrate
    from storage.db import make_engine
    from storage.instances import add_instance
    from storage.lake import Lake
    from storage.users import create_user

    settings = Settings(lake_uri=str(workdir / "lake"), database_url=f"sqlite:///{workdir / 'ops.db'}")
    lake = Lake.from_settings(settings)
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    t0 = time.perf_counter()
    generate(con, args.instances, args.days, per_day)
    n_msg = con.execute("select count(*) from msg").fetchall()[0][0]
    write_silver(con, lake)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    instance_ids = [f"inst-{i:03d}" for i in range(args.instances)]
    for inst in instance_ids:
        add_instance(engine, inst, "bench", token=f"t-{inst}")
    create_user(engine, EMAIL, PASSWORD, "supervisor", "bench")
    end_ts = datetime.combine(YEAR_START + timedelta(days=args.days), datetime.min.time(), UTC) + timedelta(hours=3)
    build_gold(lake, engine=engine, settings=settings, as_of=end_ts)
    print(
        f"{n_msg:,} messages, {args.instances} instances, {args.days} days: "
        f"data + gold in {time.perf_counter() - t0:.0f} s"
    )

    last_day = YEAR_START + timedelta(days=args.days - 1)
    start_30 = last_day - timedelta(days=29)

    def url(base: str, inst: str) -> str:
        return f"{base}/app?period=custom&from={start_30}&to={last_day}&instance_id={inst}"

    server, base = serve(
        {
            "BEAZAP_LAKE_URI": settings.lake_uri,
            "BEAZAP_DATABASE_URL": settings.database_url,
            "BEAZAP_CACHE_URL": "",
        },
        workdir,
        factory="benchmarks.dashboard:bench_app",
        name="dashboard",
    )
    from playwright.sync_api import sync_playwright

    results: dict[str, list[float]] = {"baseline_api": [], "cold": [], "warm": [], "filter_change": []}
    weight: dict[str, Any] = {}
    try:
        with sync_playwright() as pw, httpx.Client(base_url=base, timeout=60) as http:
            browser = pw.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
            login_ctx = browser.new_context()
            login(login_ctx, base)
            cookies = login_ctx.cookies()
            http.cookies.set("beazap_session", next(c["value"] for c in cookies if c["name"] == "beazap_session"))
            # two distinct instances per round, never seen by the server before: metrics cache cold for both
            rounds = min(args.rounds, len(instance_ids) // 3)
            for r in range(rounds):
                a, b, c = instance_ids[3 * r : 3 * r + 3]
                t = time.perf_counter()
                answer = http.get("/v1/metrics/overview", params={"from": start_30, "to": last_day, "instance_id": c})
                assert answer.status_code == 200, answer.text
                results["baseline_api"].append((time.perf_counter() - t) * 1000)
                context = browser.new_context()
                context.add_cookies(cookies)
                page = context.new_page()
                results["cold"].append(measure(page, url(base, a))["ready"])
                if r == 0:
                    weight = page.evaluate(WEIGHT)
                results["warm"].append(measure(page, url(base, a))["ready"])
                results["filter_change"].append(measure(page, url(base, b))["ready"])
                context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)

    total = weight.get("document", 0) + sum(r[1] for r in weight.get("resources", []))
    decoded = sum(r[2] for r in weight.get("resources", []))
    print(
        f"\nload average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {rounds} rounds; "
        "30-day overview of one instance"
    )
    print("| case | p50 ms | p90 ms | max ms | p50 / bare API p50 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    base_p50 = statistics.median(results["baseline_api"])
    for name, values in results.items():
        p50 = statistics.median(values)
        print(f"| {name} | {p50:.0f} | {percentile(values, 90):.0f} | {max(values):.0f} | {p50 / base_p50:.1f}× |")
    print(
        f"\npage weight of a cold overview: {total / 1024:.1f} KB on the wire (gzip); "
        f"resources decoded {decoded / 1024:.1f} KB"
    )
    for name, size, dec in weight.get("resources", []):
        print(f"  {name.split('/app', 1)[-1]}: {size / 1024:.1f} KB ({dec / 1024:.1f} KB decoded)")
    print(f"  document: {weight.get('document', 0) / 1024:.1f} KB")


if __name__ == "__main__":
    main()
