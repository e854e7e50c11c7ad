"""Schemathesis against the app's own OpenAPI schema: no request to any operation of the metrics and
operational APIs may answer 5xx, and every 200 JSON answer must match its documented model.

A bounded run (fixed seed, a few examples per operation) over a throw-away tenant on a throw-away
PostgreSQL database — PostgreSQL because it is the stricter store (it refuses NUL characters, which
SQLite stores) — with Evolution answered in-process (no network). The admin erasure endpoints are
left out: they rewrite the whole lake per call (``tests/test_erasure.py`` covers them); so is the live
stream, whose answer never ends (``tests/test_console_stream.py``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import negative_data_rejection

from api.app import create_app
from api.cache import InProcessCache
from core.settings import Settings
from gold.runner import build_gold
from gold.serving.reader import GoldReader
from storage import migrate
from storage.db import make_engine
from storage.instances import add_instance
from storage.tokens import create_token
from tests.conftest import PG_ADMIN_URL
from tests.support.gold_fixtures import synthetic

TOKEN: dict[str, str] = {}
SEED = 20260302
EXAMPLES = 12  # per operation: ~500 requests, well under a minute
# metrics, conversation facts, insights, LLM usage and the operational API; the live stream never ends a
# response (Server-Sent Events), so tests/test_console_stream.py covers it instead
API_PATHS = r"^/v1/(?!admin/|live/stream)"


def _evolution(request: httpx.Request) -> httpx.Response:
    """Every Evolution call succeeds (webhook set-up, sends): only BeaZap's own answers are tested."""
    return httpx.Response(200, json={"key": {"id": "EVO" + uuid.uuid4().hex[:12]}, "status": "PENDING"})


@pytest.fixture(scope="module")
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A database of its own, dropped at the end (the tenant and everything generated go with it)."""
    name = f"beazap_st_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory, pg_url: str) -> Iterator[schemathesis.BaseSchema]:
    root: Path = tmp_path_factory.mktemp("schemathesis")
    old = os.environ.get("BEAZAP_SECRET_KEY_FILE")
    os.environ["BEAZAP_SECRET_KEY_FILE"] = str(root / "secret.key")
    cfg = Settings(lake_uri=str(root / "lake"), database_url=pg_url, evolution_retries=1)
    from storage.lake import Lake

    lake = Lake.from_settings(cfg)
    engine = make_engine(cfg.database_url)
    migrate.upgrade(engine)
    add_instance(engine, "inst-a1", "acct-a", token="t")
    add_instance(engine, "inst-b1", "acct-b", token="u")
    now = datetime.now(UTC)
    synthetic(lake, instances=["inst-a1", "inst-b1"], start=datetime(2026, 3, 2, 3, tzinfo=UTC), days=5, per_day=4)
    build_gold(lake, engine=engine, settings=cfg, as_of=now)
    TOKEN["a"] = create_token(engine, "acct-a", "admin")
    app = create_app(cfg)
    app.state.engine = engine
    app.state.gold_reader = GoldReader(lake, background=False)
    app.state.metrics_cache = InProcessCache(90)
    app.state.evolution_transport = httpx.MockTransport(_evolution)
    yield schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=API_PATHS)
    engine.dispose()
    if old is None:
        os.environ.pop("BEAZAP_SECRET_KEY_FILE", None)


def test_no_server_errors(api_schema: schemathesis.BaseSchema) -> None:
    """Every operation, with Hypothesis-generated parameters and bodies: valid ones from the schema and
    invalid ones (negative mode: wrong types, nulls, missing fields)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 41  # 10 metrics (with insights) + facts + usage + 29 operational
    statuses: dict[int, int] = {}
    failures: list[tuple[str, str, int, str]] = []
    for operation in operations:

        @seed(SEED)
        @given(case=st.one_of(operation.as_strategy(), operation.as_strategy(schemathesis.GenerationMode.NEGATIVE)))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {TOKEN['a']}"})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append((case.method, case.path, response.status_code, response.text[:200]))
                return
            raw = response.headers.get("content-type") or [""]
            content_type = raw[0] if isinstance(raw, list) else raw
            if response.status_code == 200 and content_type.startswith("application/json"):
                # the answer matches its schema; unknown extra query parameters are ignored, not refused
                # (FastAPI), so a negative case answered 200 is not itself a failure
                case.validate_response(response, excluded_checks=[negative_data_rejection])
            elif response.status_code != 204:
                assert content_type.startswith(("application/json", "text/csv")), content_type

        check()
    assert failures == [], failures
    # Both valid requests (2xx) and rejected ones (4xx) were exercised.
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    rejected = sum(v for k, v in statuses.items() if 400 <= k < 500)
    assert ok > len(operations) and rejected > len(operations), statuses
