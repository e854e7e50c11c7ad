"""Metrics API: every endpoint's filters, previous period, drill-down, pagination, CSV, validation and
tenant isolation, over gold built from a small synthetic silver lake (real DuckDB, Delta, SQLite)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cache import InProcessCache
from core.settings import Settings
from gold.runner import build_gold
from gold.serving.reader import GoldReader
from storage import migrate
from storage.db import make_engine
from storage.instances import add_instance
from storage.lake import Lake
from storage.tokens import create_token
from tests.support.gold_fixtures import synthetic

START = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # Monday 00:00 in São Paulo
AS_OF = datetime(2026, 3, 16, tzinfo=UTC)
A_INSTANCES = ["inst-a1", "inst-a2"]
B_INSTANCES = ["inst-b1"]
ENDPOINTS = [
    "/v1/metrics/overview",
    "/v1/metrics/volume",
    "/v1/metrics/activity",
    "/v1/metrics/heatmap",
    "/v1/metrics/sla",
    "/v1/metrics/attendants",
    "/v1/metrics/teams",
    "/v1/metrics/calls",
    "/v1/conversations/facts",
]
PERIOD = {"from": "2026-03-09", "to": "2026-03-15"}


class World:
    def __init__(self, root: Path) -> None:
        self.settings = Settings(
            lake_uri=str(root / "lake"), database_url=f"sqlite:///{root / 'ops.db'}", cache_ttl_seconds=90
        )
        self.lake = Lake.from_settings(self.settings)
        self.engine = make_engine(self.settings.database_url)
        migrate.upgrade(self.engine)
        for inst in A_INSTANCES:
            add_instance(self.engine, inst, "acct-a", token="t-" + inst)
        for inst in B_INSTANCES:
            add_instance(self.engine, inst, "acct-b", token="t-" + inst)
        self.rows = synthetic(
            self.lake, instances=A_INSTANCES + B_INSTANCES, start=START, days=14, per_day=8, as_of=AS_OF
        )
        build_gold(self.lake, engine=self.engine, settings=self.settings, as_of=AS_OF)
        self.token_a = create_token(self.engine, "acct-a", "read-only")
        self.token_b = create_token(self.engine, "acct-b", "read-only")
        self.app = create_app(self.settings)
        self.app.state.engine = self.engine
        self.app.state.gold_reader = GoldReader(self.lake, background=False)
        self.app.state.metrics_cache = InProcessCache(90)
        self.client = TestClient(self.app)

    def get(self, path: str, token: str | None = None, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {token or self.token_a}"}
        accept = params.pop("accept", None)
        if accept:
            headers["Accept"] = accept
        return self.client.get(path, params=params, headers=headers)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import os

    root = tmp_path_factory.mktemp("metrics")
    old = os.environ.get("BEAZAP_SECRET_KEY_FILE")
    os.environ["BEAZAP_SECRET_KEY_FILE"] = str(root / "secret.key")
    w = World(root)
    yield w
    w.engine.dispose()
    if old is None:
        os.environ.pop("BEAZAP_SECRET_KEY_FILE", None)


def local_day(ts: datetime) -> date:
    from zoneinfo import ZoneInfo

    return ts.astimezone(ZoneInfo("America/Sao_Paulo")).date()


def in_period(d: date, start: str, end: str) -> bool:
    return date.fromisoformat(start) <= d <= date.fromisoformat(end)


def test_overview_counts_match_silver_and_previous_period(world: World) -> None:
    r = world.get("/v1/metrics/overview", **PERIOD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["instance_ids"] == A_INSTANCES
    assert body["previous_period"] == {"from": "2026-03-02", "to": "2026-03-08"}
    msgs = [m for m in world.rows["messages"] if m["instance_id"] in A_INSTANCES]
    convs = [c for c in world.rows["conversations"] if c["instance_id"] in A_INSTANCES]
    for key, (start, end) in {
        "current": ("2026-03-09", "2026-03-15"),
        "previous": ("2026-03-02", "2026-03-08"),
    }.items():
        fig = body[key]
        want_in = sum(
            1 for m in msgs if m["direction"] == "inbound" and in_period(local_day(m["event_at"]), start, end)
        )
        assert fig["messages_inbound"] == want_in
        want_open = sum(1 for c in convs if in_period(local_day(c["opened_at"]), start, end))
        assert fig["conversations_opened"] == want_open
        want_res = sum(1 for c in convs if c["resolved_at"] and in_period(local_day(c["resolved_at"]), start, end))
        assert fig["conversations_resolved"] == want_res
    cur, prev = body["current"]["conversations_opened"], body["previous"]["conversations_opened"]
    assert body["change_pct"]["conversations_opened"] == pytest.approx(round((cur - prev) / prev * 100, 2))


def test_overview_multi_instance_filter(world: World) -> None:
    one = world.get("/v1/metrics/overview", instance_id="inst-a1", **PERIOD).json()
    two = world.get("/v1/metrics/overview", instance_id=["inst-a1", "inst-a2"], **PERIOD).json()
    other = world.get("/v1/metrics/overview", instance_id="inst-a2", **PERIOD).json()
    assert one["instance_ids"] == ["inst-a1"]
    for k in ("messages_inbound", "conversations_opened", "conversations_resolved"):
        assert two["current"][k] == one["current"][k] + other["current"][k]


@pytest.mark.parametrize("granularity", ["hour", "day", "week", "month"])
def test_volume_granularities_sum_to_totals(world: World, granularity: str) -> None:
    r = world.get("/v1/metrics/volume", granularity=granularity, **PERIOD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert sum(row["total"] for row in body["rows"]) == body["totals"]["total"]
    assert sum(row["inbound"] for row in body["rows"]) == body["totals"]["inbound"]
    assert body["totals"]["total"] > 0
    if granularity == "hour":
        assert all(len(row["bucket"]) == 16 for row in body["rows"])


def test_volume_by_instance_and_kind(world: World) -> None:
    by_inst = world.get("/v1/metrics/volume", by="instance", **PERIOD).json()
    assert {row["instance_id"] for row in by_inst["rows"]} == set(A_INSTANCES)
    by_kind = world.get("/v1/metrics/volume", by="kind", **PERIOD).json()
    assert {row["key"] for row in by_kind["rows"]} <= {"text", "image", "audio", "document"}
    assert sum(r["total"] for r in by_kind["rows"]) == by_kind["totals"]["total"]


def test_volume_attendant_filter_counts_their_messages(world: World) -> None:
    att = "inst-a1-att0"
    body = world.get("/v1/metrics/volume", attendant_id=att, **PERIOD).json()
    want = sum(
        1
        for m in world.rows["messages"]
        if m["sender_attendant_id"] == att and in_period(local_day(m["event_at"]), PERIOD["from"], PERIOD["to"])
    )
    # Messages without a sender are attributed to the assignee at that moment: at least the explicit ones.
    assert body["totals"]["outbound"] >= want > 0
    assert body["totals"]["inbound"] == 0


def test_activity_matches_silver(world: World) -> None:
    """Media by type and distinct contacts (new vs returning) of the period, from the silver rows."""
    start, end = PERIOD["from"], PERIOD["to"]
    msgs = [m for m in world.rows["messages"] if m["instance_id"] in A_INSTANCES]
    first_day: dict[tuple[str, str], date] = {}
    for m in sorted(msgs, key=lambda m: m["event_at"]):
        first_day.setdefault((m["instance_id"], m["contact_key"]), local_day(m["event_at"]))
    now = [m for m in msgs if in_period(local_day(m["event_at"]), start, end)]
    contacts = {(m["instance_id"], m["contact_key"]) for m in now}
    new = {c for c in contacts if in_period(first_day[c], start, end)}
    body = world.get("/v1/metrics/activity", **PERIOD).json()
    for kind in ("image", "audio", "document"):
        assert body["totals"][f"media_{kind}"] == sum(m["kind"] == kind for m in now), kind
    assert body["totals"]["contacts"] == len(contacts) > 0
    assert body["totals"]["new_contacts"] == len(new)
    assert body["totals"]["returning_contacts"] == len(contacts - new)
    assert sum(r["media_image"] for r in body["rows"]) == body["totals"]["media_image"]


def test_heatmap_cells(world: World) -> None:
    body = world.get("/v1/metrics/heatmap", **PERIOD).json()
    assert sum(c["inbound_messages"] for c in body["cells"]) == body["totals"]["inbound_messages"]
    assert all(1 <= c["weekday"] <= 7 and 0 <= c["hour"] <= 23 for c in body["cells"])
    cell = max(body["cells"], key=lambda c: c["conversations_opened"])
    drill = world.client.get(cell["drilldown"], headers={"Authorization": f"Bearer {world.token_a}"}).json()
    assert len(drill["rows"]) == cell["conversations_opened"]
    assert all(r["opened_hour"] == cell["hour"] and r["opened_weekday"] == cell["weekday"] for r in drill["rows"])


@pytest.mark.parametrize("people", [{"attendant_id": "inst-a1-att0"}, {"team_id": "inst-a1-team1"}])
def test_heatmap_people_filter_counts_their_conversations(world: World, people: dict[str, str]) -> None:
    # docs/api.md § Common filters: under a team/attendant filter inbound volume is 0 and conversations
    # are those assigned to the people (regression: the heatmap ignored both filters).
    body = world.get("/v1/metrics/heatmap", **people, **PERIOD).json()
    everyone = world.get("/v1/metrics/heatmap", **PERIOD).json()
    facts = world.get("/v1/conversations/facts", limit=1000, **people, **PERIOD).json()["rows"]
    assert facts and len(facts) < everyone["totals"]["conversations_opened"]
    assert body["totals"] == {"inbound_messages": 0, "conversations_opened": len(facts)}
    assert all(c["inbound_messages"] == 0 for c in body["cells"])
    per_cell: dict[tuple[int, int], int] = {}
    for r in facts:
        key = (r["opened_weekday"], r["opened_hour"])
        per_cell[key] = per_cell.get(key, 0) + 1
    assert {(c["weekday"], c["hour"]): c["conversations_opened"] for c in body["cells"]} == per_cell


def test_sla_summary_and_daily_drilldown(world: World) -> None:
    body = world.get("/v1/metrics/sla", **PERIOD).json()
    clocks = {(c["clock"], c["basis"]): c for c in body["clocks"]}
    frt = clocks[("first_response", "calendar")]
    convs = [
        c
        for c in world.rows["conversations"]
        if c["instance_id"] in A_INSTANCES
        and in_period(local_day(c["opened_at"]), PERIOD["from"], PERIOD["to"])
        and c["first_response_at"]
    ]
    values = sorted((c["first_response_at"] - c["opened_at"]).total_seconds() for c in convs)
    assert frt["count"] == len(values)
    import statistics

    assert frt["median_seconds"] == pytest.approx(statistics.median(values))
    assert sum(frt["buckets"].values()) >= frt["count"]
    assert clocks[("first_response", "business")]["count"] == len(values)
    assert {c["clock"] for c in body["previous_clocks"]} >= {"first_response", "resolution"}
    day = body["rows"][0]
    drill = world.client.get(day["drilldown"], headers={"Authorization": f"Bearer {world.token_a}"}).json()
    assert len(drill["rows"]) == day["conversations"]


def test_attendants_and_teams_rank_with_previous(world: World) -> None:
    body = world.get("/v1/metrics/attendants", sort="conversations_resolved", **PERIOD).json()
    resolved = [r["conversations_resolved"] for r in body["rows"]]
    assert resolved == sorted(resolved, reverse=True)
    assert [r["rank"] for r in body["rows"]] == list(range(1, len(body["rows"]) + 1))
    assert all(r["id"].startswith(("inst-a1", "inst-a2")) or r["id"] == "unattributed" for r in body["rows"])
    assert any(r["previous"]["conversations_resolved"] > 0 for r in body["rows"])
    multi = world.get("/v1/metrics/attendants", attendant_id=["inst-a1-att0", "inst-a1-att1"], **PERIOD).json()
    assert {r["id"] for r in multi["rows"]} <= {"inst-a1-att0", "inst-a1-att1"}
    teams = world.get("/v1/metrics/teams", team_id="inst-a1-team0", **PERIOD).json()
    assert [r["id"] for r in teams["rows"]] == ["inst-a1-team0"]
    top = teams["rows"][0]
    drill = world.client.get(top["drilldown"] + "&limit=1000", headers={"Authorization": f"Bearer {world.token_a}"})
    assert all(r["team_id"] == "inst-a1-team0" for r in drill.json()["rows"])


def test_calls(world: World) -> None:
    body = world.get("/v1/metrics/calls", **PERIOD).json()
    calls = [
        c
        for c in world.rows["calls"]
        if c["instance_id"] in A_INSTANCES and in_period(local_day(c["offered_at"]), PERIOD["from"], PERIOD["to"])
    ]
    assert body["totals"]["offered"] == len(calls)
    assert body["totals"]["missed"] == sum(1 for c in calls if c["outcome"] == "missed")
    assert body["totals"]["voice"] + body["totals"]["video"] == len(calls)
    assert sum(r["offered"] for r in body["rows"]) == len(calls)


def test_facts_cursor_pagination_covers_everything_once(world: World) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7, **PERIOD}
        if cursor:
            params["cursor"] = cursor
        body = world.get("/v1/conversations/facts", **params).json()
        seen += [r["conversation_id"] for r in body["rows"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    want = {
        c["conversation_id"]
        for c in world.rows["conversations"]
        if c["instance_id"] in A_INSTANCES and in_period(local_day(c["opened_at"]), PERIOD["from"], PERIOD["to"])
    }
    assert len(seen) == len(set(seen)) == len(want)
    assert set(seen) == want


def test_facts_filters(world: World) -> None:
    body = world.get("/v1/conversations/facts", status="resolved", frt_sla="breached", limit=1000, **PERIOD).json()
    assert body["rows"]
    assert all(r["status"] == "resolved" and r["frt_sla"] == "breached" for r in body["rows"])
    assert world.get("/v1/conversations/facts", cursor="not-a-cursor").status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/v1/metrics/volume",
        "/v1/metrics/activity",
        "/v1/metrics/heatmap",
        "/v1/metrics/sla",
        "/v1/metrics/attendants",
        "/v1/metrics/teams",
        "/v1/metrics/calls",
        "/v1/conversations/facts",
    ],
)
def test_csv_export(world: World, path: str) -> None:
    r = world.get(path, accept="text/csv", **PERIOD)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    js = world.get(path, **PERIOD).json()
    key = "cells" if path.endswith("heatmap") else "rows"
    assert len(rows) == len(js[key])


@pytest.mark.parametrize("path", ENDPOINTS)
def test_isolation_other_tenants_instance_is_404(world: World, path: str) -> None:
    r = world.get(path, instance_id="inst-b1", **PERIOD)
    assert r.status_code == 404
    assert r.json() == {"error": "instance not found: inst-b1"}
    # A mix of own and foreign ids is refused as a whole.
    assert world.get(path, instance_id=["inst-a1", "inst-b1"], **PERIOD).status_code == 404
    # Unknown ids look exactly like foreign ones.
    assert world.get(path, instance_id="nope", **PERIOD).status_code == 404
    # Tenant B sees only its own data by default.
    body = world.get(path, token=world.token_b, **PERIOD).json()
    text = str(body)
    assert "inst-a1" not in text and "inst-a2" not in text
    assert world.client.get(path).status_code == 401


def test_tenant_b_sees_own_numbers(world: World) -> None:
    body = world.get("/v1/metrics/overview", token=world.token_b, **PERIOD).json()
    assert body["instance_ids"] == B_INSTANCES
    want = sum(
        1
        for c in world.rows["conversations"]
        if c["instance_id"] in B_INSTANCES and in_period(local_day(c["opened_at"]), PERIOD["from"], PERIOD["to"])
    )
    assert body["current"]["conversations_opened"] == want


@pytest.mark.parametrize(
    ("params", "code", "needle"),
    [
        ({"from": "2026-03-10", "to": "2026-03-01"}, 422, "'from' must be on or before 'to'"),
        ({"from": "2020-01-01", "to": "2026-03-01"}, 422, "maximum is 400"),
        ({"from": "yesterday"}, 422, "invalid request"),
    ],
)
def test_validation_errors(world: World, params: dict[str, str], code: int, needle: str) -> None:
    for path in ENDPOINTS:
        r = world.get(path, **params)
        assert r.status_code == code, (path, r.text)
        assert needle in r.text


def test_bad_granularity(world: World) -> None:
    r = world.get("/v1/metrics/volume", granularity="minute")
    assert r.status_code == 422
    assert "granularity" in r.text


def test_default_period_is_last_30_days(world: World) -> None:
    body = world.get("/v1/metrics/overview").json()
    start, end = date.fromisoformat(body["period"]["from"]), date.fromisoformat(body["period"]["to"])
    assert (end - start).days == 29
    assert end == datetime.now(UTC).date()
    assert date.fromisoformat(body["previous_period"]["to"]) == start - timedelta(days=1)


def _data_days(world: World) -> tuple[date, date]:
    days = [local_day(m["event_at"]) for m in world.rows["messages"] if m["instance_id"] in A_INSTANCES]
    days += [local_day(c["opened_at"]) for c in world.rows["conversations"] if c["instance_id"] in A_INSTANCES]
    days += [local_day(c["offered_at"]) for c in world.rows["calls"] if c["instance_id"] in A_INSTANCES]
    return min(days), max(days)


@pytest.mark.parametrize("path", [p for p in ENDPOINTS if p != "/v1/conversations/facts"])
def test_empty_default_window_says_where_the_data_is(world: World, path: str) -> None:
    # The data are in March 2026; the default window (the last 30 days) holds none of it.
    body = world.get(path).json()
    first, last = _data_days(world)
    assert date.fromisoformat(body["period"]["from"]) > last
    assert body["no_data"]["first_day"] == first.isoformat()
    assert body["no_data"]["last_day"] == last.isoformat()
    assert first.isoformat() in body["no_data"]["message"] and last.isoformat() in body["no_data"]["message_pt"]
    assert "no_data" not in world.get(path, **PERIOD).json()
