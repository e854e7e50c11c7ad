"""Metrics cache: hits, expiry, invalidation when gold changes; in-process and real Redis (127.0.0.1:6379)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from api.app import create_app
from api.cache import InProcessCache, RedisCache, cache_from_settings, make_key
from core.settings import Settings
from gold.runner import build_gold
from gold.serving.reader import GoldReader
from storage import migrate
from storage.db import make_engine
from storage.instances import add_instance
from storage.lake import Lake
from storage.tokens import create_token
from tests.support.gold_fixtures import synthetic, write_silver

REDIS_URL = "redis://127.0.0.1:6379/0"
START = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
AS_OF = datetime(2026, 3, 10, tzinfo=UTC)
PERIOD = {"from": "2026-03-02", "to": "2026-03-09"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_in_process_hit_and_expiry() -> None:
    clock = FakeClock()
    cache = InProcessCache(ttl=90, clock=clock)
    cache.set("k", {"a": 1})
    assert cache.get("k") == {"a": 1}
    clock.now += 89.9
    assert cache.get("k") == {"a": 1}
    clock.now += 0.2
    assert cache.get("k") is None
    assert cache.get("missing") is None


def test_in_process_is_bounded_lru() -> None:
    cache = InProcessCache(ttl=60, max_entries=3)
    for i in range(3):
        cache.set(f"k{i}", i)
    assert cache.get("k0") == 0  # k0 becomes most recent
    cache.set("k3", 3)
    assert cache.get("k1") is None
    assert [cache.get(k) for k in ("k0", "k2", "k3")] == [0, 2, 3]
    cache.clear()
    assert len(cache) == 0


def test_keys_change_with_gold_fingerprint_and_params() -> None:
    a = make_key("p", "overview", {"instances": ["x"], "from": "2026-03-01"}, "1-1")
    assert a == make_key("p", "overview", {"from": "2026-03-01", "instances": ["x"]}, "1-1")
    assert a != make_key("p", "overview", {"instances": ["x"], "from": "2026-03-01"}, "2-1")
    assert a != make_key("p", "overview", {"instances": ["y"], "from": "2026-03-01"}, "1-1")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("Redis not reachable on 127.0.0.1:6379")
    prefix = f"beazap-test-{uuid.uuid4().hex}"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def test_redis_hit_expiry_and_clear(redis_prefix: str) -> None:
    cache = RedisCache(REDIS_URL, ttl=0.5, prefix=redis_prefix)
    key = f"{redis_prefix}:overview:v:abc"
    cache.set(key, {"n": 3, "when": "2026-03-01"})
    assert cache.get(key) == {"n": 3, "when": "2026-03-01"}
    ttl_ms = redis.Redis.from_url(REDIS_URL).pttl(key)
    assert 0 < ttl_ms <= 500
    deadline = time.monotonic() + 5
    while cache.get(key) is not None:
        assert time.monotonic() < deadline, "entry did not expire"
        time.sleep(0.05)
    cache.set(key, 1)
    other = RedisCache(REDIS_URL, ttl=60, prefix=redis_prefix + "-other")
    other.set(f"{redis_prefix}-other:k", 2)
    cache.clear()
    assert cache.get(key) is None
    assert other.get(f"{redis_prefix}-other:k") == 2
    other.clear()


def test_redis_outage_degrades_to_miss() -> None:
    cache = RedisCache("redis://127.0.0.1:1/0", ttl=60, prefix="x")
    cache.set("x:k", 1)
    assert cache.get("x:k") is None


def test_cache_from_settings_picks_backend() -> None:
    assert isinstance(cache_from_settings(Settings(cache_url=None)), InProcessCache)
    assert isinstance(cache_from_settings(Settings(cache_url=REDIS_URL)), RedisCache)


class Env:
    def __init__(self, root: Path, cache: object, background: bool = False) -> None:
        self.settings = Settings(lake_uri=str(root / "lake"), database_url=f"sqlite:///{root / 'ops.db'}")
        self.lake = Lake.from_settings(self.settings)
        self.engine = make_engine(self.settings.database_url)
        migrate.upgrade(self.engine)
        add_instance(self.engine, "inst-1", "acct", token="t1")
        self.rows = synthetic(self.lake, instances=["inst-1"], start=START, days=7, per_day=5, as_of=AS_OF)
        build_gold(self.lake, engine=self.engine, settings=self.settings, as_of=AS_OF)
        self.token = create_token(self.engine, "acct", "read-only")
        self.app = create_app(self.settings)
        self.app.state.engine = self.engine
        self.reader = GoldReader(self.lake, refresh_seconds=0.1, background=background)
        self.app.state.gold_reader = self.reader
        self.app.state.metrics_cache = cache
        self.client = TestClient(self.app)
        self.queries = 0
        original_cursor, original_arrays = self.reader.cursor, self.reader.arrays

        def counting_cursor():  # counts how often the gold copy is actually queried (SQL path)
            self.queries += 1
            return original_cursor()

        def counting_arrays():  # ... or its numpy copy (fast path)
            self.queries += 1
            return original_arrays()

        self.reader.cursor = counting_cursor  # type: ignore[method-assign]
        self.reader.arrays = counting_arrays  # type: ignore[method-assign]

    def overview(self) -> dict:
        r = self.client.get("/v1/metrics/overview", params=PERIOD, headers={"Authorization": f"Bearer {self.token}"})
        assert r.status_code == 200, r.text
        return r.json()

    def add_conversation(self) -> None:
        opened = START + timedelta(days=3, hours=5)
        write_silver(
            self.lake,
            "conversations",
            [
                {
                    "conversation_id": "extra",
                    "instance_id": "inst-1",
                    "origin": "inbound",
                    "opened_at": opened,
                    "status": "open",
                }
            ],
            mode="append",
        )
        build_gold(self.lake, engine=self.engine, settings=self.settings, as_of=AS_OF)


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("BEAZAP_SECRET_KEY_FILE", str(tmp_path / "secret.key"))
    return tmp_path


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_api_hit_then_invalidation_on_gold_change(
    secret_env: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        cache: object = RedisCache(REDIS_URL, ttl=90, prefix=prefix)
    else:
        cache = InProcessCache(ttl=90)
    env = Env(secret_env, cache)
    first = env.overview()
    assert env.queries == 1
    assert env.overview() == first  # served from the cache
    assert env.queries == 1
    env.add_conversation()
    env.reader.refresh()
    second = env.overview()
    assert env.queries == 2
    assert second["current"]["conversations_opened"] == first["current"]["conversations_opened"] + 1
    if backend == "redis":
        keys = list(redis.Redis.from_url(REDIS_URL).scan_iter(match=f"{prefix}:overview:*"))
        assert len(keys) == 2  # one per gold fingerprint


def test_background_refresh_picks_up_rebuilt_gold(secret_env: Path) -> None:
    env = Env(secret_env, InProcessCache(ttl=90), background=True)
    before = env.overview()["current"]["conversations_opened"]
    env.add_conversation()
    deadline = time.monotonic() + 15
    while env.overview()["current"]["conversations_opened"] == before:
        assert time.monotonic() < deadline, "the metrics API never saw the rebuilt gold"
        time.sleep(0.05)
    env.reader.close()


def test_api_expiry_recomputes(secret_env: Path) -> None:
    clock = FakeClock()
    env = Env(secret_env, InProcessCache(ttl=60, clock=clock))
    env.overview()
    env.overview()
    assert env.queries == 1
    clock.now += 61
    env.overview()
    assert env.queries == 2
