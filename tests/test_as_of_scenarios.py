"""One notion of "now" (docs/metrics.md → Conversations, Clocks): three hand-computed scenarios checked
in silver, gold, the metrics API and the live store, all driven by the same bronze.

- A: the business answers, the customer never writes again, the instance receives nothing for two
  days (only another instance does): expired, no resolution breach.
- B: the customer writes once and is never answered: open and waiting, its first response breached
  once past the target, until the abandonment limit marks it abandoned.
- C: the customer writes on Friday 17:30 and is answered on Monday 09:20 (São Paulo): one
  conversation, FRT 63 h 50 min of calendar time and the business-hours FRT of Mon–Fri 08:00–18:00.
- D: answered, then a closing "obrigado" left unanswered: expired with one unanswered wait.
- E: never answered, resolved by an attendant after two silent days: resolved live and in silver alike.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from api.cache import InProcessCache
from core.identity import conversation_id
from core.instance_config import InstanceConfig
from core.settings import Settings
from gold.runner import build_gold
from gold.serving.reader import GoldReader
from live import actions as live_actions
from live.projector import Projector
from live.sla import SlaPolicy, clocks
from silver.pipeline import build_silver
from silver.state import SilverState
from storage.duck import connect
from storage.instances import add_instance
from storage.lake import Lake
from storage.ops_repo import ConflictError
from storage.tables import conversations, instances
from storage.tokens import TenantScope, create_token
from tests.support.bronze_rows import append_ops, append_webhooks, ops_rows, webhook_rows
from tests.test_silver_scenarios import message

INST, OTHER = "loja-now", "loja-outra"
A, B, C, D, E = ("5511911110001", "5511911110002", "5511911110003", "5511911110004", "5511911110005")
FRT_TARGET = 15 * 60  # calendar seconds (set below)
# Friday 2026-03-06 17:30 in São Paulo (UTC-3, no DST) → Monday 2026-03-09 09:20
C_IN, C_OUT = datetime(2026, 3, 6, 20, 30, tzinfo=UTC), datetime(2026, 3, 9, 12, 20, tzinfo=UTC)
T = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # Tuesday 10:00 local: A, B and D write
TWO_DAYS = T + timedelta(days=2, minutes=10)  # only the other instance receives something
NINE_DAYS = T + timedelta(days=9)  # past B's abandonment limit (7 days)
_seq = iter(range(10**6))


def jid(phone: str) -> str:
    return f"{phone}@s.whatsapp.net"


def land(lake: Lake, *bodies: dict[str, Any]) -> None:
    """A replay: each webhook received when it happened (its message time)."""
    rows = [(f"r{next(_seq):06d}", datetime.fromtimestamp(b["data"]["messageTimestamp"], UTC), json.dumps(b))
            for b in bodies]  # fmt: skip
    append_webhooks(lake, webhook_rows(rows))


def silver_convs(lake: Lake) -> dict[str, list[dict[str, Any]]]:
    con = connect(lake)
    rel = con.sql(f"select * from silver.conversations where instance_id = '{INST}' order by opened_at")
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rel.fetchall():
        row = dict(zip(rel.columns, r, strict=True))
        out.setdefault(row["contact_key"], []).append(row)
    con.close()
    return out


def gold_facts(lake: Lake) -> dict[str, dict[str, Any]]:
    con = connect(lake)
    rel = con.sql(f"select * from gold.conversation_facts where instance_id = '{INST}'")
    out = {r[rel.columns.index("contact_key")]: dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()}
    con.close()
    return out


def live_convs(engine: sa.Engine) -> dict[str, list[dict[str, Any]]]:
    c = conversations
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for r in conn.execute(sa.select(c).where(c.c.instance_id == INST).order_by(c.c.opened_at)):
            out.setdefault(r.contact_key, []).append(dict(r._mapping))
    return out


def api(lake: Lake, settings: Settings, engine: sa.Engine, token: str, path: str, **params: Any) -> Any:
    app = create_app(settings)
    app.state.engine = engine
    app.state.gold_reader = GoldReader(lake, background=False)
    app.state.metrics_cache = InProcessCache(90)
    r = TestClient(app).get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_one_now_in_silver_gold_api_and_live(engine: sa.Engine, settings: Settings, lake: Lake) -> None:
    for inst in (INST, OTHER):
        add_instance(engine, inst, "acct-now")
    weekdays = {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    policy = {
        "first_response": {"minutes": FRT_TARGET / 60, "basis": "calendar"},
        "next_reply": {"minutes": 60, "basis": "calendar"},
        "resolution": {"minutes": 24 * 60, "basis": "calendar"},
    }
    with engine.begin() as conn:
        conn.execute(
            sa.update(instances)
            .where(instances.c.id == INST)
            .values(business_hours={"weekly": weekdays}, sla_policy=policy)
        )
    token = create_token(engine, "acct-now", "read-only")
    projector = Projector(lake, engine, settings)
    period = {"from": "2026-03-01", "to": "2026-03-31", "instance_id": INST}

    land(
        lake,
        message("c-in", jid(C), C_IN, instance=INST),
        message("c-out", jid(C), C_OUT, from_me=True, instance=INST),
        message("a-in", jid(A), T, instance=INST),
        message("a-out", jid(A), T + timedelta(minutes=5), from_me=True, instance=INST),
        message("b-in", jid(B), T, instance=INST),
        message("d-in", jid(D), T, instance=INST),
        message("d-out", jid(D), T + timedelta(minutes=2), from_me=True, instance=INST),
        message("d-thanks", jid(D), T + timedelta(minutes=3), instance=INST),
        message("e-in", jid(E), T, instance=INST),
    )
    land(lake, message("o-1", jid("5511900000009"), TWO_DAYS, instance=OTHER))

    # --- silver: one as-of for the run, bounded by what bronze holds (the other instance's message)
    stats = build_silver(lake)
    assert stats["_run"]["as_of"] == TWO_DAYS == SilverState.load(lake).as_of
    s = silver_convs(lake)
    (a,) = s["+" + A]
    assert a["status"] == "expired" and a["closed_at"] == T + timedelta(minutes=5)
    assert a["expired_at"] == T + timedelta(minutes=5, hours=24) and a["resolved_at"] is None
    (b,) = s["+" + B]
    assert b["status"] == "open" and b["first_response_at"] is None and b["closed_at"] is None
    (c,) = s["+" + C]  # one conversation across the weekend
    assert c["conversation_id"] == conversation_id(INST, "+" + C, "c-in") and c["first_response_at"] == C_OUT
    (d,) = s["+" + D]
    assert d["status"] == "expired" and d["last_inbound_at"] == T + timedelta(minutes=3)

    # --- gold: running clocks measured to silver's as-of
    gold_stats = build_gold(lake, engine=engine, settings=settings)
    assert {s["as_of"] for s in gold_stats.values()} == {TWO_DAYS.isoformat()}
    g = gold_facts(lake)
    ga, gb, gc, gd = (g["+" + k] for k in (A, B, C, D))
    assert ga["status"] == "expired" and ga["frt_sla"] == "met" and ga["resolution_sla"] is None
    assert ga["resolution_overdue_seconds"] is None
    assert gb["status"] == "open" and gb["frt_sla"] == "breached"
    assert gb["frt_overdue_seconds"] == (TWO_DAYS - T).total_seconds() - FRT_TARGET
    assert gc["frt_seconds"] == 63 * 3600 + 50 * 60
    # business hours Mon–Fri 08:00–18:00: Friday 17:30–18:00 + Monday 08:00–09:20
    assert gc["frt_business_seconds"] == (30 + 80) * 60
    assert gd["status"] == "expired" and gd["unanswered_waits"] == 1 and gd["replies"] == 0

    # --- metrics API
    overview = api(lake, settings, engine, token, "/v1/metrics/overview", **period)["current"]
    assert overview["conversations_expired"] == 3 and overview["conversations_abandoned"] == 0  # A, C, D
    facts = {r["conversation_id"]: r for r in api(lake, settings, engine, token, "/v1/conversations/facts",
                                                  **period)["rows"]}  # fmt: skip
    assert facts[b["conversation_id"]]["status"] == "open" and facts[b["conversation_id"]]["frt_sla"] == "breached"
    assert facts[c["conversation_id"]]["frt_seconds"] == 63 * 3600 + 50 * 60
    assert facts[a["conversation_id"]]["resolution_sla"] is None

    # --- live store: the same bronze, the sweep at the live as-of (bounded by what bronze holds)
    projector.run_once()
    projector.sweep(every_seconds=0)
    live = live_convs(engine)
    assert [x["status"] for x in live["+" + A]] == ["expired"]
    assert utc(live["+" + A][0]["closed_at"]) == a["closed_at"]
    assert [x["status"] for x in live["+" + B]] == ["open"]
    live_sla = SlaPolicy.of(InstanceConfig(sla_policy=policy))
    b_live = {k: utc(v) if isinstance(v, datetime) else v for k, v in live["+" + B][0].items()}
    assert clocks(b_live, live_sla, TWO_DAYS)["clocks"]["first_response"]["state"] == "breached"
    assert [x["id"] for x in live["+" + C]] == [c["conversation_id"]]
    assert utc(live["+" + C][0]["first_response_at"]) == C_OUT
    assert [x["status"] for x in live["+" + D]] == ["expired"]
    # resolving A after its expiry is refused in the live store, as silver would ignore it
    scope = TenantScope(account_id="acct-now", token_id="tok-test", scope="admin", instance_ids=frozenset({INST}))
    try:
        live_actions.act(engine, scope, a["conversation_id"], "resolve", actor_id="att-1")
    except ConflictError:
        pass
    else:
        raise AssertionError("an expired conversation must not be resolvable")
    # E waited two silent days for its first response: still open, so an attendant may resolve it…
    (e_live,) = live["+" + E]
    done = live_actions.act(engine, scope, e_live["id"], "resolve", actor_id="att-1", now=TWO_DAYS)
    assert done["status"] == "resolved"
    # …and silver applies the same action the same way (the action log reaches bronze/ops_events)
    append_ops(lake, ops_rows([{"action_id": "act-e", "instance": INST, "contact_key": "+" + E,
                                "action": "resolve", "actor_id": "att-1", "occurred_at": TWO_DAYS}]))  # fmt: skip
    build_silver(lake)
    (e,) = silver_convs(lake)["+" + E]
    assert e["conversation_id"] == e_live["id"] and e["status"] == "resolved" and e["resolved_at"] == TWO_DAYS

    # --- nine days later (again only the other instance talks): B is abandoned everywhere
    land(lake, message("o-2", jid("5511900000009"), NINE_DAYS, instance=OTHER))
    assert build_silver(lake)["_run"]["as_of"] == NINE_DAYS
    (b,) = silver_convs(lake)["+" + B]
    abandon = timedelta(hours=settings.abandon_after_hours)
    assert b["status"] == "abandoned" and b["closed_at"] == b["expired_at"] == T + abandon
    build_gold(lake, engine=engine, settings=settings)
    gb = gold_facts(lake)["+" + B]
    assert gb["status"] == "abandoned" and gb["frt_sla"] == "breached" and gb["resolution_sla"] is None
    assert gb["frt_overdue_seconds"] == abandon.total_seconds() - FRT_TARGET  # the clock stopped at the limit
    overview = api(lake, settings, engine, token, "/v1/metrics/overview", **period)["current"]
    assert overview["conversations_abandoned"] == 1 and overview["conversations_expired"] == 3
    projector.run_once()
    projector.sweep(every_seconds=0)
    (lb,) = live_convs(engine)["+" + B]
    assert lb["status"] == "abandoned" and utc(lb["closed_at"]) == T + abandon


def test_rebuild_from_the_same_bronze_and_as_of_is_identical(settings: Settings, lake: Lake) -> None:
    land(
        lake,
        message("a-in", jid(A), T, instance=INST),
        message("a-out", jid(A), T + timedelta(minutes=5), from_me=True, instance=INST),
        message("b-in", jid(B), T, instance=INST),
    )
    at = T + timedelta(days=8)  # an explicit as-of past both closing times
    build_silver(lake, as_of=at)
    first = silver_convs(lake)
    assert [x["status"] for x in first["+" + A] + first["+" + B]] == ["expired", "abandoned"]
    assert build_silver(lake, full=True, as_of=at)["_run"]["as_of"] == at
    assert silver_convs(lake) == first
