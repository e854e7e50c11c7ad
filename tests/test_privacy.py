"""Log masking end to end: run the demo path (simulator → receiver → bronze → silver → gold → live
store), then erasure, retention and a Dagster materialization, at DEBUG level, capture every byte
they print, and look for the simulator's phone numbers and message texts: none may appear."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED, INSTANCES, DAYS = 5, 1, 1
TEXT_KEYS = {"conversation", "text", "caption", "pushName"}


def _secrets_of(value: Any, phones: set[str], texts: set[str], key: str = "") -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _secrets_of(v, phones, texts, k)
    elif isinstance(value, list):
        for v in value:
            _secrets_of(v, phones, texts, key)
    elif isinstance(value, str):
        for digits in re.findall(r"(\d{10,15})@(?:s\.whatsapp\.net|c\.us|lid)", value):
            phones.add(digits)
        if key in TEXT_KEYS and len(value) >= 8 and value != "[erased]":
            texts.add(value)


def _simulated_secrets() -> tuple[set[str], set[str]]:
    from beazap.simulator import SimulationConfig, simulate

    sim = simulate(SimulationConfig(seed=SEED, instances=INSTANCES, days=DAYS, start=date(2026, 3, 2)))
    phones: set[str] = set()
    texts: set[str] = set()
    for delivery in sim.deliveries:
        _secrets_of(delivery.body, phones, texts)
    return phones, texts


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "beazap.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    return output


@pytest.mark.slow
def test_no_phone_or_text_in_any_log_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    phones, texts = _simulated_secrets()
    assert len(phones) >= 5 and len(texts) >= 5, "the simulator must produce contacts and texts"
    home = tmp_path / "demo"
    env = {
        **os.environ,
        "BEAZAP_LOG_LEVEL": "DEBUG",
        "BEAZAP_LOG_JSON": "false",
        "BEAZAP_SECRET_KEY_FILE": str(tmp_path / "secret.key"),
        "BEAZAP_LAKE_URI": str(home / "lake"),
        "BEAZAP_DATABASE_URL": f"sqlite:///{home / 'beazap.db'}",
        "COLUMNS": "200",
    }
    env.pop("BEAZAP_CACHE_URL", None)
    output = _run(
        ["demo", "--home", str(home), "--instances", str(INSTANCES), "--days", str(DAYS), "--seed", str(SEED)], env
    )
    victim = "+" + sorted(p for p in phones if p.startswith("55") and len(p) == 13)[0]
    output += _run(["erase", "--dry-run", "--phone", victim], env)
    output += _run(["erase", "--yes", "--phone", victim], env)
    output += _run(["erase", "--verify", "--phone", victim], env)
    output += _run(["retention", "apply", "--dry-run"], env)

    # Dagster in-process, with BeaZap's logging at DEBUG: its event log goes to stderr too.
    import dagster as dg

    from core.logging import configure_logging
    from core.settings import get_settings
    from orchestration.definitions import build_definitions
    from orchestration.defs.gold import gold_partitions
    from orchestration.resources import LakeResource, OpsStoreResource

    configure_logging("DEBUG")
    defs = build_definitions()
    result = dg.materialize(
        [*(defs.assets or []), *(defs.asset_checks or [])],
        instance=dg.DagsterInstance.ephemeral(),
        resources={
            "lake": LakeResource(lake_uri=env["BEAZAP_LAKE_URI"]),
            "ops_store": OpsStoreResource(database_url=env["BEAZAP_DATABASE_URL"]),
        },
        partition_key=gold_partitions(get_settings()).get_last_partition_key(),  # gold: today's partition (+ late days)
        raise_on_error=False,
    )
    assert result.success
    captured = capfd.readouterr()
    output += captured.out + captured.err

    assert "silver_built" in output and "erasure.completed" in output  # the logs were captured
    leaked_phones = sorted(p for p in phones if p in output)
    leaked_texts = sorted(t for t in texts if t in output)
    assert leaked_phones == [], f"{len(leaked_phones)} phone numbers leaked"
    assert leaked_texts == [], f"{len(leaked_texts)} message texts leaked, e.g. {leaked_texts[:1]}"
