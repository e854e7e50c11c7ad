"""Schemathesis against the app's own OpenAPI schema: no metrics request may answer 5xx, and every
answer that is not an error must match its documented response model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from api.app import create_app
from api.cache import InProcessCache
from core.settings import Settings
from gold.fixtures import synthetic
from gold.runner import build_gold
from gold.serving.reader import GoldReader
from storage import migrate
from storage.db import make_engine
from storage.instances import add_instance
from storage.tokens import create_token

TOKEN: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    root: Path = tmp_path_factory.mktemp("schemathesis")
    old = os.environ.get("BEAZAP_SECRET_KEY_FILE")
    os.environ["BEAZAP_SECRET_KEY_FILE"] = str(root / "secret.key")
    cfg = Settings(lake_uri=str(root / "lake"), database_url=f"sqlite:///{root / 'ops.db'}")
    from storage.lake import Lake

    lake = Lake.from_settings(cfg)
    engine = make_engine(cfg.database_url)
    migrate.upgrade(engine)
    add_instance(engine, "inst-a1", "acct-a", token="t")
    add_instance(engine, "inst-b1", "acct-b", token="u")
    now = datetime.now(UTC)
    synthetic(lake, instances=["inst-a1", "inst-b1"], start=datetime(2026, 3, 2, 3, tzinfo=UTC), days=5, per_day=4)
    build_gold(lake, engine=engine, settings=cfg, as_of=now)
    TOKEN["a"] = create_token(engine, "acct-a", "read-only")
    app = create_app(cfg)
    app.state.engine = engine
    app.state.gold_reader = GoldReader(lake, background=False)
    app.state.metrics_cache = InProcessCache(90)
    metrics_only = r"^/v1/(metrics/|conversations/facts$)"  # also the insights helper's /v1/metrics/ endpoints
    yield schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=metrics_only)
    engine.dispose()
    if old is None:
        os.environ.pop("BEAZAP_SECRET_KEY_FILE", None)


def test_no_server_errors(api_schema: schemathesis.BaseSchema) -> None:
    """Every metrics operation, with Hypothesis-generated parameters from the schema."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 10  # 8 metrics + topics and sentiment (insights)
    statuses: dict[int, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {TOKEN['a']}"})
            assert response.status_code < 500, (case.path, case.query, response.text)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            raw = response.headers.get("content-type") or [""]
            content_type = raw[0] if isinstance(raw, list) else raw
            if response.status_code == 200 and content_type.startswith("application/json"):
                case.validate_response(response)
            else:
                assert content_type.startswith(("application/json", "text/csv")), content_type

        check()
    # Both valid requests (200) and rejected ones (4xx) were exercised.
    assert statuses.get(200, 0) > 8 and sum(v for k, v in statuses.items() if 400 <= k < 500) > 8, statuses
