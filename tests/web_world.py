"""A small two-account world for the dashboard tests: synthetic gold, instances, attendants and users.

Account ``acct-a`` has two instances, an admin, a supervisor and an attendant user (mapped to the
attendant ``inst-a1-att0`` of the synthetic data); account ``acct-b`` has one instance and a supervisor.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from api.app import create_app
from api.cache import InProcessCache
from core.settings import Settings
from gold.runner import build_gold
from gold.serving.reader import GoldReader
from storage import migrate, ops_repo
from storage.db import make_engine
from storage.instances import add_instance
from storage.lake import Lake
from storage.tokens import TenantScope, create_token
from storage.users import create_user
from tests.support.gold_fixtures import synthetic

START = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # Monday 00:00 in São Paulo
AS_OF = datetime(2026, 3, 16, tzinfo=UTC)
A_INSTANCES = ["inst-a1", "inst-a2"]
B_INSTANCES = ["inst-b1"]
PERIOD = {"from": "2026-03-09", "to": "2026-03-15"}
PASSWORD = "correct horse battery"
ATTENDANT = "inst-a1-att0"
OTHER_ATTENDANT = "inst-a1-att1"
USERS = {
    "admin": "admin@a.example",
    "supervisor": "super@a.example",
    "attendant": "att@a.example",
    "supervisor_b": "super@b.example",
}


class WebWorld:
    def __init__(self, root: Path, engine_url: str | None = None) -> None:
        self.settings = Settings(
            lake_uri=str(root / "lake"),
            database_url=engine_url or f"sqlite:///{root / 'ops.db'}",
            cache_ttl_seconds=90,
        )
        self.lake = Lake.from_settings(self.settings)
        self.engine = make_engine(self.settings.database_url)
        migrate.upgrade(self.engine)
        for inst in A_INSTANCES:
            add_instance(self.engine, inst, "acct-a", token="t-" + inst)
        for inst in B_INSTANCES:
            add_instance(self.engine, inst, "acct-b", token="t-" + inst)
        scope_a = TenantScope("acct-a", "setup", "admin", frozenset(A_INSTANCES))
        for att in (ATTENDANT, OTHER_ATTENDANT):
            ops_repo.create_attendant(self.engine, scope_a, "inst-a1", {"id": att, "name": f"Pessoa {att[-1]}"})
        synthetic(self.lake, instances=A_INSTANCES + B_INSTANCES, start=START, days=14, per_day=8, as_of=AS_OF)
        build_gold(self.lake, engine=self.engine, settings=self.settings, as_of=AS_OF)
        create_user(self.engine, USERS["admin"], PASSWORD, "admin", "acct-a")
        create_user(self.engine, USERS["supervisor"], PASSWORD, "supervisor", "acct-a")
        create_user(self.engine, USERS["attendant"], PASSWORD, "attendant", "acct-a", attendant_id=ATTENDANT)
        create_user(self.engine, USERS["supervisor_b"], PASSWORD, "supervisor", "acct-b")
        self.token_a = create_token(self.engine, "acct-a", "read-only")
        self.app = create_app(self.settings)
        self.app.state.engine = self.engine
        self.app.state.gold_reader = GoldReader(self.lake, background=False)
        self.app.state.metrics_cache = InProcessCache(90)
