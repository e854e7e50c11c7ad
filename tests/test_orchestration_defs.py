"""The Dagster code location's assembly: per-domain Definitions, resources from the environment
(no secret as a config literal), nothing read at import time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value

from core.settings import Settings, get_settings
from orchestration.definitions import DOMAINS, build_definitions
from orchestration.resources import OpsStoreResource

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Pw-only-in-the-env-7f3a"
DATABASE_URL = f"postgresql+psycopg://beazap:{PASSWORD}@127.0.0.1:5432/test"


def _snapshot(defs: dg.Definitions) -> str:
    """Everything the UI, the daemon and a run see of the code location (jobs, config schemas and
    defaults, resources and their configured values), serialized."""
    return serialize_value(RepositorySnap.from_def(defs.get_repository_def()))


@pytest.fixture
def env_with_password(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("BEAZAP_DATABASE_URL", DATABASE_URL)
    get_settings.cache_clear()
    return get_settings()


def test_the_database_password_never_becomes_a_config_value(env_with_password: Settings) -> None:
    defs = build_definitions()
    snapshot = _snapshot(defs)
    assert PASSWORD not in snapshot
    assert "BEAZAP_DATABASE_URL" in snapshot  # the resource names the variable instead

    # The scan would see a literal: the same resources with the URL copied in leak it.
    leaky = dg.Definitions(
        assets=defs.assets,
        jobs=defs.jobs,
        resources={"lake": defs.resources["lake"], "ops_store": OpsStoreResource(database_url=DATABASE_URL)},
    )
    assert PASSWORD in _snapshot(leaky)


def test_a_run_carries_no_password_in_its_config_or_events(env_with_password: Settings) -> None:
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    result = defs.get_job_def("observe_bronze").execute_in_process(instance=instance)
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    assert PASSWORD not in serialize_value(run)
    assert PASSWORD not in repr(run.run_config)
    records = instance.all_logs(result.run_id)
    assert records and not any(PASSWORD in serialize_value(r) for r in records)


def test_resources_resolve_the_environment_at_run_time(env_with_password: Settings) -> None:
    ops_store = build_definitions().resources["ops_store"]
    assert isinstance(ops_store, OpsStoreResource)
    with dg.build_resources({"ops_store": ops_store}) as resources:
        assert resources.ops_store.database_url == DATABASE_URL


def test_every_domain_contributes_and_the_merge_is_complete(settings: Settings) -> None:
    parts = {domain.__name__.rsplit(".", 1)[1]: domain.defs(settings) for domain in DOMAINS}
    assert {"bronze", "silver", "gold", "maintenance", "automation"} == set(parts)
    assert parts["bronze"].assets and parts["silver"].assets and parts["gold"].assets
    assert parts["maintenance"].jobs and parts["maintenance"].schedules
    merged = build_definitions(settings)
    assert len(list(merged.assets or [])) == sum(len(list(p.assets or [])) for p in parts.values())
    assert len(list(merged.asset_checks or [])) == sum(len(list(p.asset_checks or [])) for p in parts.values())
    assert {s.name for s in merged.schedules or []} == {s.name for p in parts.values() for s in p.schedules or []}


def test_schedules_and_partitions_follow_settings_given_at_load_time(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEAZAP_DEFAULT_TIMEZONE", "America/Manaus")
    monkeypatch.setenv("BEAZAP_AUTOMATION_OBSERVE_SECONDS", "42")
    get_settings.cache_clear()
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    partitions = graph.get(dg.AssetKey(["gold", "daily_volume"])).partitions_def
    assert isinstance(partitions, dg.DailyPartitionsDefinition) and partitions.timezone == "America/Manaus"
    assert defs.get_schedule_def("retention_daily").execution_timezone == "America/Manaus"
    assert defs.get_sensor_def("bronze_observer").minimum_interval_seconds == 42


def test_importing_the_code_location_reads_no_settings() -> None:
    """Settings are read when Dagster loads ``defs``, never when a module is imported."""
    code = (
        "import core.settings as s\n"
        "def boom(*a, **k):\n"
        "    raise SystemExit('settings read at import time')\n"
        "s.get_settings = boom\n"
        "import orchestration.definitions, orchestration.resources, orchestration.steps\n"
        "from orchestration.defs import automation, bronze, gold, maintenance, silver\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
