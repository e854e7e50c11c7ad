"""The one instance configuration model (core/instance_config.py): validation, defaults from the
settings, PATCH merging, reads that never fail, business-time arithmetic, the live SLA lists on the
policy's basis, gold's fallback on a bad stored value, and migration 0010 (flat → nested policy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from core import instance_config as ic
from core.settings import get_settings
from live import sla as live_sla
from storage import migrate
from storage.instances import add_instance, load_configs
from storage.tables import conversations, instances
from storage.tokens import TenantScope

SP = "America/Sao_Paulo"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    """Set ``BEAZAP_*`` variables for one test (settings re-read)."""

    def set_(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(f"BEAZAP_{key.upper()}", value)
        get_settings.cache_clear()

    yield set_
    get_settings.cache_clear()


def test_defaults_come_from_settings(env) -> None:
    s = get_settings()
    cfg = ic.InstanceConfig()
    assert cfg.timezone == s.default_timezone
    assert cfg.sla_policy.next_reply.minutes == s.sla_next_reply_minutes
    assert cfg.sla_policy.first_response.basis == s.sla_first_response_basis
    assert cfg.sla_policy.at_risk_ratio == s.sla_at_risk_ratio
    env(
        default_timezone="America/Manaus",
        sla_next_reply_minutes="45",
        sla_resolution_basis="business",
        default_business_hours='["mon-sat 09:00-17:00"]',
    )
    cfg = ic.InstanceConfig()
    assert cfg.timezone == "America/Manaus"
    assert cfg.sla_policy.next_reply.minutes == 45
    assert cfg.sla_policy.resolution.basis == "business"
    assert cfg.business_hours.versions[0].weekly["sat"] == [("09:00", "17:00")]
    assert "sun" not in cfg.business_hours.versions[0].weekly


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"business_hours": {"weekly": {"mon": [["8:00", "18:00"]]}}}, "HH:MM"),
        ({"business_hours": {"weekly": {"mon": [["18:00", "08:00"]]}}}, "before closing"),
        ({"business_hours": {"weekly": {"mon": [["08:00", "12:00"], ["11:00", "13:00"]]}}}, "overlap"),
        ({"business_hours": {"weekly": {"funday": [["08:00", "12:00"]]}}}, "weekday"),
        ({"business_hours": {"holidays": ["2026-13-40"]}}, "holidays"),
        ({"sla_policy": {"first_response": {"minutes": 0}}}, "greater than 0"),
        ({"sla_policy": {"first_response": {"minutes": 5, "basis": "lunar"}}}, "basis"),
        ({"sla_policy": {"first_response_minutes": 5}}, "first_response_minutes"),
        ({"sla_policy": {"at_risk_ratio": None}}, "at_risk_ratio"),
    ],
)
def test_bad_configuration_is_a_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ic.ConfigError, match=message):
        ic.validate(**kwargs)


def test_cli_specs_parse_and_validate() -> None:
    weekly = ic.parse_hours(["mon-fri 08:00-12:00,13:00-18:00", "sat 08:00-12:00", "sun closed"])
    assert weekly["wed"] == [("08:00", "12:00"), ("13:00", "18:00")] and weekly["sun"] == []
    assert ic.parse_hours(["mon,wed 09:00-10:00"]).keys() == {"mon", "wed"}
    assert ic.parse_sla("first_response=30m:business") == ("first_response", {"minutes": 30, "basis": "business"})
    assert ic.parse_sla("resolution=1.5d") == ("resolution", {"minutes": 2160})
    for bad in ("mon-fri 18:00-08:00", "fri-mon 08:00-18:00", "mon 08:00", "mon 08:00-12:00 mon 13:00-14:00"):
        with pytest.raises(ValueError):
            ic.parse_hours([bad])
    for bad in ("first=30m", "first_response=30x", "resolution=24h:lunar"):
        with pytest.raises(ValueError):
            ic.parse_sla(bad)


def test_patch_merges_nested_values_and_rejects_null_zone() -> None:
    current = ic.patched({}, {"timezone": "America/Recife", "sla_policy": {"resolution": {"minutes": 600}}})
    after = ic.patched(current, {"sla_policy": {"first_response": {"minutes": 30, "basis": "calendar"}}})
    assert after["timezone"] == "America/Recife"
    assert after["sla_policy"]["resolution"]["minutes"] == 600  # kept
    assert after["sla_policy"]["first_response"] == {"minutes": 30, "basis": "calendar"}
    only_minutes = ic.patched(after, {"sla_policy": {"first_response": {"minutes": 45}}})
    assert only_minutes["sla_policy"]["first_response"] == {"minutes": 45, "basis": "calendar"}
    off = ic.patched(after, {"sla_policy": {"next_reply": None}})
    assert ic.InstanceConfig.model_validate(off).sla_policy.next_reply is None
    with pytest.raises(ic.ConfigError, match="timezone"):
        ic.patched(after, {"timezone": None})
    hours = ic.patched(after, {"business_hours": {"weekly": {"sat": [["08:00", "12:00"]]}}})
    dated = ic.patched(
        hours, {"business_hours": {"weekly": {"mon": [["09:00", "17:00"]]}, "effective_from": "2026-12-01"}}
    )
    versions = ic.InstanceConfig.model_validate(dated).business_hours.versions
    assert [v.effective_from.isoformat() for v in versions] == ["1970-01-01", "2026-12-01"]
    assert versions[0].weekly == {"sat": [("08:00", "12:00")]}
    holidays = ic.patched(dated, {"business_hours": {"holidays": ["2026-12-25"]}})
    assert len(holidays["business_hours"]["versions"]) == 2  # holidays alone keep the schedules


def _logged(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    """Everything logged (structlog prints, or goes through logging once the CLI configured it)."""
    out = capsys.readouterr()
    return out.out + out.err + caplog.text


def test_load_never_fails_and_logs_a_warning(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    cfg = ic.load("inst-1", "Not/AZone", {"weekly": {"mon": [["18:00", "08:00"]]}}, {"first_response": {"minutes": 5}})
    assert cfg.timezone == get_settings().default_timezone
    assert cfg.business_hours == ic.BusinessHours()
    assert cfg.sla_policy.first_response.minutes == 5  # the valid part is kept
    text = _logged(capsys, caplog)
    assert "invalid stored instance configuration" in text and "inst-1" in text and "timezone" in text


def test_business_time_arithmetic() -> None:
    cfg = ic.InstanceConfig(timezone=SP, business_hours={"weekly": {"mon": [["08:00", "18:00"]]}})
    sat = datetime(2026, 12, 5, 13, 0, tzinfo=UTC)  # Saturday 10:00 in São Paulo (UTC-3)
    mon_open = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)  # Monday 08:00 local
    assert cfg.business_seconds(sat, mon_open) == 0
    assert cfg.business_seconds(sat, mon_open + timedelta(minutes=20)) == 20 * 60
    assert cfg.business_deadline(sat, 15 * 60) == mon_open + timedelta(minutes=15)
    assert cfg.business_start(mon_open + timedelta(minutes=20), 15 * 60) == mon_open + timedelta(minutes=5)
    assert not cfg.is_open(sat) and cfg.is_open(mon_open)
    holiday = cfg.model_copy(
        update={"business_hours": ic.BusinessHours(versions=cfg.business_hours.versions, holidays=["2026-12-07"])}
    )
    assert holiday.business_deadline(sat, 60) == mon_open + timedelta(days=7, seconds=60)
    never = ic.InstanceConfig(business_hours={"weekly": {}})
    assert never.business_deadline(sat, 60) is None and never.business_start(sat, 60) is None


def test_live_lists_use_the_policys_basis(engine: sa.Engine) -> None:
    """A conversation that arrives on Saturday is not at risk on Sunday under a business-hours target."""
    add_instance(engine, "biz", "acct", timezone=SP)
    add_instance(engine, "cal", "acct", timezone=SP)
    target = {"minutes": 15}
    with engine.begin() as conn:
        conn.execute(
            sa.update(instances)
            .where(instances.c.id == "biz")
            .values(sla_policy={"first_response": {**target, "basis": "business"}})
        )
        conn.execute(
            sa.update(instances)
            .where(instances.c.id == "cal")
            .values(sla_policy={"first_response": {**target, "basis": "calendar"}})
        )
        sat = datetime(2026, 12, 5, 13, 0, tzinfo=UTC)  # Saturday 10:00 local
        for inst in ("biz", "cal"):
            conn.execute(
                sa.insert(conversations).values(
                    id=f"cv-{inst}",
                    instance_id=inst,
                    contact_key="+5511900000000",
                    origin="inbound",
                    opening_message_id=f"m-{inst}",
                    opened_at=sat,
                    last_message_at=sat,
                    status="open",
                )
            )
    scope = TenantScope("acct", "t", "admin", frozenset({"biz", "cal"}))

    def listed(kind: str, now: datetime) -> set[str]:
        return {r["instance_id"] for r in live_sla.first_response_list(engine, scope, ["biz", "cal"], kind, now)}

    sunday = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
    assert listed("breached", sunday) == {"cal"}
    assert listed("at_risk", sunday) == set()
    monday_0812 = datetime(2026, 12, 7, 11, 12, 30, tzinfo=UTC)  # 12.5 of 15 business minutes
    assert listed("at_risk", monday_0812) == {"biz"}
    assert listed("breached", monday_0812) == {"cal"}
    monday_0816 = datetime(2026, 12, 7, 11, 16, tzinfo=UTC)
    assert listed("breached", monday_0816) == {"biz", "cal"}
    row = live_sla.first_response_list(engine, scope, ["biz"], "queue", sunday)[0]
    clock = row["sla"]["clocks"]["first_response"]
    assert clock["basis"] == "business" and clock["state"] == "ok"
    assert clock["due_at"] == datetime(2026, 12, 7, 11, 15, tzinfo=UTC)


def test_gold_falls_back_for_one_bad_instance(
    engine: sa.Engine, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from gold.config import config_tables
    from gold.config import load_configs as gold_configs

    add_instance(engine, "good", "acct", timezone="America/Manaus")
    add_instance(engine, "bad", "acct")
    with engine.begin() as conn:  # a value written around the API (e.g. by hand in SQL)
        conn.execute(
            sa.update(instances)
            .where(instances.c.id == "bad")
            .values(timezone="Nowhere/Land", business_hours={"weekly": {"mon": [["25:00", "26:00"]]}})
        )
    configs = {g.instance_id: g.config for g in gold_configs(engine, ["good", "bad", "unstored"])}
    assert configs["good"].timezone == "America/Manaus"
    assert configs["bad"].timezone == get_settings().default_timezone
    assert configs["unstored"] == ic.InstanceConfig()
    assert config_tables(list(g for g in gold_configs(engine, [])))["instances"].num_rows == 2
    text = _logged(capsys, caplog)
    assert "invalid stored instance configuration" in text and "bad" in text
    assert load_configs(engine, ["good"]).keys() == {"good"}


def test_migration_0010_nests_flat_policies(db_url: str) -> None:
    from storage.db import make_engine

    eng = make_engine(db_url)
    try:
        migrate.upgrade(eng, "0009_leases")
        with eng.begin() as conn:
            conn.execute(sa.text("INSERT INTO accounts (id, name) VALUES ('a', 'a')"))
            rows = {
                "flat": {"first_response_minutes": 10, "next_reply_minutes": 20, "at_risk_ratio": 0.5},
                "mixed": {"first_response": {"minutes": 7, "basis": "business"}, "first_response_minutes": 99},
                "none": None,
            }
            for inst, policy in rows.items():
                conn.execute(
                    sa.insert(instances).values(
                        id=inst, account_id="a", webhook_token_hash="x", timezone=SP, sla_policy=policy
                    )
                )
        migrate.upgrade(eng)
        with eng.connect() as conn:
            got = dict(conn.execute(sa.select(instances.c.id, instances.c.sla_policy)).all())
        assert got["flat"] == {
            "first_response": {"minutes": 10.0, "basis": "calendar"},
            "next_reply": {"minutes": 20.0, "basis": "calendar"},
            "at_risk_ratio": 0.5,
        }
        assert got["mixed"] == {"first_response": {"minutes": 7, "basis": "business"}}
        assert got["none"] is None
        for inst in got:
            ic.validate(SP, None, got[inst])  # every migrated policy is valid in the one model
        assert migrate.drift(eng) == []
        migrate.downgrade(eng, "0009_leases")
        with eng.connect() as conn:
            back = dict(conn.execute(sa.select(instances.c.id, instances.c.sla_policy)).all())
        assert back["flat"] == {"first_response_minutes": 10.0, "next_reply_minutes": 20.0, "at_risk_ratio": 0.5}
    finally:
        eng.dispose()


def test_an_effective_dated_change_rewrites_only_the_days_it_affects(
    lake, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """Gold recomputes from silver with the current configuration; the run of the latest partition
    (``refresh_changed``) replaces the older days whose rows changed — with a schedule effective from
    day D, those are D and later, never the days before it."""
    from datetime import date

    from gold.runner import build_gold
    from storage import ops_repo
    from tests.support.gold_fixtures import synthetic

    monkeypatch.setenv("BEAZAP_SECRET_KEY_FILE", str(tmp_path / "k"))
    start, as_of = datetime(2026, 3, 2, 3, tzinfo=UTC), datetime(2026, 3, 13, 15, tzinfo=UTC)
    add_instance(engine, "inst-sp", "acct", timezone=SP)
    synthetic(lake, instances=["inst-sp"], start=start, days=10, per_day=12, as_of=as_of, seed=11)
    build_gold(lake, engine=engine, as_of=as_of)
    scope = TenantScope("acct", "t", "admin", frozenset({"inst-sp"}))
    changed_from = date(2026, 3, 9)
    ops_repo.update_instance(
        engine,
        scope,
        "inst-sp",
        {"business_hours": {"weekly": {d: [["10:00", "14:00"]] for d in ic.WEEKDAYS}, "effective_from": "2026-03-09"}},
    )
    stats = build_gold(lake, engine=engine, as_of=as_of, days=(date(2026, 3, 13), None), refresh_changed=True)
    late = {date.fromisoformat(d) for d in stats["conversation_facts"]["late_days"]}
    assert late, "the new schedule changes business-hours values from 2026-03-09 on"
    assert min(late) >= changed_from


def test_the_default_zone_is_written_only_in_settings() -> None:
    """No product module repeats the default time zone (migration history and the simulator's list of
    simulated zones aside): everything else asks ``core.settings`` / ``core.instance_config``."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    literal = "America/" + "Sao_Paulo"
    packages = ("core", "storage", "bronze", "silver", "gold", "llm", "live", "governance", "api", "orchestration")
    found = sorted(
        str(path.relative_to(root))
        for package in (*packages, "beazap/commands")
        for path in (root / package).rglob("*.py")
        if "migrations/versions" not in str(path) and literal in path.read_text(encoding="utf-8")
    )
    assert found == ["core/settings.py"]
