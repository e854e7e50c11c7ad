"""The Dagster UI renders the asset graph with every BeaZap asset (headless Chromium).

Skips only when Chromium is not installed locally (``apt-get install -y chromium``); in CI it runs
(``.ci/run`` installs Chromium) and fails if the browser is missing. The same
check runs by hand with ``uv run python -m tests.support.dagster_ui_check`` (docs/orchestration.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.settings import Settings
from orchestration.definitions import LAKE_TABLES
from tests.support import dagster_ui_check as ui_check


@pytest.mark.slow
@pytest.mark.skipif(
    ui_check.chromium_binary() is None and not os.environ.get("CI"),
    reason="chromium is not installed (in CI it must be: .ci/run installs it)",
)
def test_asset_graph_renders_every_asset(settings: Settings, tmp_path: Path) -> None:
    report = ui_check.run(tmp_path / "ui", timeout=180)
    assert sorted(report["assets"]) == sorted(LAKE_TABLES)
    assert report["groups"] == ["bronze", "gold", "silver"]
    for layer in ("bronze", "silver", "gold"):
        page = report["pages"][layer]
        assert page["assets_in_dom"] == page["assets_expected"] > 0, page
        assert not page["error_in_dom"]
    assert report["ok"], report["pages"]
    assert all(Path(p["screenshot"]).stat().st_size > ui_check.MIN_RENDERED_BYTES for p in report["pages"].values())
