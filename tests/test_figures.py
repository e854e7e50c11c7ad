"""The figures of docs/metrics.md § Message activity, § Contacts and conversations by origin, on a small
scenario computed by hand: silver rows → gold → the metrics API (JSON and CSV, fast and SQL paths).

Instance in São Paulo (UTC−3). Contacts A and B; local days Monday 2026-03-02 (D1), Tuesday (D2):
- D1 10:00 A → text, edited, 1 reaction (conversation c1, opened by the customer)
- D1 10:05 business → A image, 1 reaction
- D1 11:00 B → audio, revoked (conversation c2, opened by the customer)
- D2 09:00 business → A text (conversation c3, opened by the business)
- D2 09:10 A → text
So D1: edited 1, revoked 1, reactions 2, image 1, audio 1, contacts 2 (both new), conversations 2
(2 by the customer); D2: contacts 1 (A, returning), conversations 1 (by the business).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cache import InProcessCache
from core.settings import Settings
from gold.runner import build_gold
from gold.serving import fast
from gold.serving.reader import GoldReader
from storage import migrate
from storage.db import make_engine
from storage.duck import connect
from storage.instances import add_instance
from storage.tokens import create_token
from tests.support.gold_fixtures import write_silver

INST = "inst-fig"
A, B = "+5511900000001", "+5511900000002"
AS_OF = datetime(2026, 3, 5, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Local São Paulo time on 2026-03-0<day> as UTC."""
    return datetime(2026, 3, day, hour + 3, minute, tzinfo=UTC)


def message(mid: str, contact: str, direction: str, kind: str, when: datetime, conv: str, **flags: Any) -> dict:
    return {
        "instance_id": INST,
        "message_id": mid,
        "chat_jid": contact[1:] + "@s.whatsapp.net",
        "chat_type": "direct",
        "contact_key": contact,
        "direction": direction,
        "kind": kind,
        "event_at": when,
        "automated": False,
        "conversation_id": conv,
        "revoked": flags.get("revoked", False),
        "edited": flags.get("edited", False),
        "reaction_count": flags.get("reactions", 0),
    }


def conversation(cid: str, contact: str, origin: str, first: str, opened: datetime, last: datetime) -> dict:
    return {
        "conversation_id": cid,
        "instance_id": INST,
        "contact_key": contact,
        "chat_jid": contact[1:] + "@s.whatsapp.net",
        "origin": origin,
        "opening_message_id": first,
        "opened_at": opened,
        "last_message_at": last,
        "status": "open",
        "is_reopen": False,
        "reopened": False,
    }


MESSAGES = [
    message("m1", A, "inbound", "text", at(2, 10), "c1", edited=True, reactions=1),
    message("m2", A, "outbound", "image", at(2, 10, 5), "c1", reactions=1),
    message("m3", B, "inbound", "audio", at(2, 11), "c2", revoked=True),
    message("m4", A, "outbound", "text", at(3, 9), "c3"),
    message("m5", A, "inbound", "text", at(3, 9, 10), "c3"),
]
CONVERSATIONS = [
    conversation("c1", A, "inbound", "m1", at(2, 10), at(2, 10, 5)),
    conversation("c2", B, "inbound", "m3", at(2, 11), at(2, 11)),
    conversation("c3", A, "outbound", "m4", at(3, 9), at(3, 9, 10)),
]
D1 = {"edited": 1, "revoked": 1, "reactions": 2, "media_image": 1, "media_audio": 1}
D1 |= {"contacts": 2, "new_contacts": 2, "returning_contacts": 0}
D2 = {"edited": 0, "revoked": 0, "reactions": 0, "media_image": 0, "media_audio": 0}
D2 |= {"contacts": 1, "new_contacts": 0, "returning_contacts": 1}


class World:
    def __init__(self, root: Path) -> None:
        settings = Settings(lake_uri=str(root / "lake"), database_url=f"sqlite:///{root / 'ops.db'}")
        from storage.lake import Lake

        self.lake = Lake.from_settings(settings)
        self.engine = make_engine(settings.database_url)
        migrate.upgrade(self.engine)
        add_instance(self.engine, INST, "acct-a", token="t-a", timezone="America/Sao_Paulo")
        add_instance(self.engine, "inst-other", "acct-b", token="t-b", timezone="America/Sao_Paulo")
        write_silver(self.lake, "messages", MESSAGES)
        write_silver(self.lake, "conversations", CONVERSATIONS)
        build_gold(self.lake, engine=self.engine, settings=settings, as_of=AS_OF)
        self.token = create_token(self.engine, "acct-a", "read-only")
        app = create_app(settings)
        app.state.engine = self.engine
        app.state.gold_reader = GoldReader(self.lake, background=False)
        self.cache = InProcessCache(90)
        app.state.metrics_cache = self.cache
        self.client = TestClient(app)

    def get(self, path: str, accept: str | None = None, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} | ({"Accept": accept} if accept else {})
        return self.client.get(path, params=params, headers=headers)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import os

    root = tmp_path_factory.mktemp("figures")
    old = os.environ.get("BEAZAP_SECRET_KEY_FILE")
    os.environ["BEAZAP_SECRET_KEY_FILE"] = str(root / "secret.key")
    w = World(root)
    yield w
    w.engine.dispose()
    if old is None:
        os.environ.pop("BEAZAP_SECRET_KEY_FILE", None)


def test_gold_holds_the_hand_computed_figures(world: World) -> None:
    con = connect(world.lake)
    try:
        volume = con.execute(
            "select day::varchar, sum(edited_messages), sum(revoked_messages), sum(reactions), "
            "sum(messages) filter (where kind = 'image'), sum(messages) filter (where kind = 'audio') "
            "from gold.daily_volume group by 1 order by 1"
        ).fetchall()
        contacts = con.execute(
            "select day::varchar, contact_key, messages, new from gold.contact_days order by day, contact_key"
        ).fetchall()
        origin = con.execute(
            "select day::varchar, sum(opened), sum(opened_inbound), sum(opened_outbound) "
            "from gold.daily_conversations group by 1 having sum(opened) > 0 order by 1"
        ).fetchall()
    finally:
        con.close()
    assert volume == [("2026-03-02", 1, 1, 2, 1, 1), ("2026-03-03", 0, 0, 0, None, None)]
    assert contacts == [("2026-03-02", A, 2, True), ("2026-03-02", B, 1, True), ("2026-03-03", A, 2, False)]
    assert origin == [("2026-03-02", 2, 2, 0), ("2026-03-03", 1, 0, 1)]


def test_activity_per_day_and_period(world: World) -> None:
    r = world.get("/v1/metrics/activity", **{"from": "2026-03-02", "to": "2026-03-03"})
    assert r.status_code == 200, r.text
    body = r.json()
    rows = {row["bucket"]: row for row in body["rows"]}
    assert set(rows) == {"2026-03-02", "2026-03-03"}
    assert {k: rows["2026-03-02"][k] for k in D1} == D1
    assert {k: rows["2026-03-03"][k] for k in D2} == D2
    # Over the two days A counts once, and is new: its first message ever is inside the period.
    assert {k: body["totals"][k] for k in ("contacts", "new_contacts", "returning_contacts")} == {
        "contacts": 2,
        "new_contacts": 2,
        "returning_contacts": 0,
    }
    assert body["totals"]["reactions"] == 2 and body["totals"]["media_video"] == 0


def test_activity_previous_period_and_week(world: World) -> None:
    body = world.get("/v1/metrics/activity", **{"from": "2026-03-03", "to": "2026-03-03"}).json()
    assert {k: body["totals"][k] for k in D2} == D2
    assert {k: body["previous_totals"][k] for k in D1} == D1
    assert body["change_pct"]["contacts"] == -50.0
    week = world.get("/v1/metrics/activity", granularity="week", **{"from": "2026-03-02", "to": "2026-03-08"}).json()
    assert [(r["bucket"], r["contacts"], r["new_contacts"], r["edited"]) for r in week["rows"]] == [
        ("2026-W10", 2, 2, 1)
    ]


def test_activity_csv_matches_json(world: World) -> None:
    period = {"from": "2026-03-02", "to": "2026-03-03"}
    r = world.get("/v1/metrics/activity", accept="text/csv", **period)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    got = list(csv.DictReader(io.StringIO(r.text)))
    want = world.get("/v1/metrics/activity", **period).json()["rows"]
    assert [{k: int(row[k]) for k in D1} for row in got] == [{k: row[k] for k in D1} for row in want]


def test_activity_rejects_people_filters_and_other_tenants(world: World) -> None:
    period = {"from": "2026-03-02", "to": "2026-03-03"}
    r = world.get("/v1/metrics/activity", team_id="t1", **period)
    assert r.status_code == 422 and "team_id" in r.text, r.text
    assert world.get("/v1/metrics/activity", instance_id="inst-other", **period).status_code == 404


@pytest.mark.parametrize("path", ["fast", "sql"])
def test_conversations_by_origin_in_overview_and_volume(
    world: World, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Both ways of answering (the numpy fast path and the SQL of gold.serving.queries) split by origin."""
    if path == "sql":
        monkeypatch.setattr(fast, "supports", lambda f: False)
        monkeypatch.setattr(fast, "supports_volume", lambda f, by: False)
    world.cache.clear()
    figures = ("conversations_opened", "conversations_opened_inbound", "conversations_opened_outbound")
    overview = world.get("/v1/metrics/overview", **{"from": "2026-03-03", "to": "2026-03-03"}).json()
    assert [overview["current"][k] for k in figures] == [1, 0, 1]
    assert [overview["previous"][k] for k in figures] == [2, 2, 0]
    both = {"from": "2026-03-02", "to": "2026-03-03"}
    for granularity in ("day", "week"):
        rows = world.get("/v1/metrics/volume", granularity=granularity, **both).json()["rows"]
        got = [(r["bucket"], *(r[k] for k in figures)) for r in rows]
        want = [("2026-03-02", 2, 2, 0), ("2026-03-03", 1, 0, 1)] if granularity == "day" else [("2026-W10", 3, 2, 1)]
        assert got == want, granularity
    text = world.get("/v1/metrics/volume", accept="text/csv", **both).text
    assert [r["conversations_opened_outbound"] for r in csv.DictReader(io.StringIO(text))] == ["0", "1"]
