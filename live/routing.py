"""Live routing of new conversations: rules first, an LLM when configured, never blocking.

When a conversation opens on an instance whose ``instances.routing.router`` is ``"llm"``, a routing
job is queued (by the ``llm`` :class:`~live.assignment.Router`, which the projector's auto-assignment
calls, and by :meth:`RoutingWorker.discover` as a safety net). The routing worker (``beazap llm
route-worker``) takes jobs from the queue and, for each conversation:

1. keyword rules → their team;
2. outside business hours with an after-hours team → that team;
3. an LLM (when configured, enabled for the instance, within the tenant's daily budget) → its team,
   urgency, priority and confidence;
4. otherwise, or on any LLM failure (timeout, errors, invalid answers after retries, or no answer within
   ``llm_route_deadline_seconds``, the latency budget of one decision) → the default team.

The chosen team's next free attendant (round-robin, :func:`live.assignment.pick_round_robin`) gets the
conversation through a ``route`` action whose details record source (rule|llm), reason, model,
confidence, urgency, priority and latency. The projector and the webhook receiver never wait for
any of this.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, exists, select

from core import instance_config
from core.logging import get_logger
from core.settings import Settings, get_settings
from core.utc import as_utc
from live.actions import act_in
from live.assignment import RouteDecision, pick_round_robin, register_router
from live.routing_queue import KIND_ROUTE, Job, claim, enqueue, finish, purge, retry_later
from live.routing_rules import (
    PRIORITY_BY_URGENCY,
    Proposal,
    RoutingConfig,
    fallback_proposal,
    keyword_proposal,
)
from llm import prompts
from llm.client import LLMClient, LLMError
from llm.schemas import parse_routing, routing_schema
from llm.store import CachedAnswer, add_usage, cache_get_many, cache_put_many, usage_today
from llm.transcript import TranscriptMessage, content_hash, render
from storage.ops_repo import ConflictError, InvalidError, NotFoundError
from storage.tables import actions, conversations, instances, llm_jobs, messages, teams

log = get_logger(__name__)

PURPOSE = "route"
FIRST_MESSAGES = 5
ROUTE_TOKEN_BUDGET = 400
DISCOVER_LOOKBACK = timedelta(hours=24)
PURGE_EVERY_SECONDS = 600.0
KEEP_FINISHED_JOBS = timedelta(days=7)


class LeaseLostError(RuntimeError):
    """Another worker took the job over (this worker's lease expired): its decision is dropped."""


class LLMQueueRouter:
    """The ``llm`` router of :mod:`live.assignment`: queues a routing job and returns at once."""

    name = "llm"

    def route(self, conn: Connection, conversation: dict[str, Any], *, team_id: str | None) -> RouteDecision | None:
        settle = timedelta(seconds=get_settings().llm_route_settle_seconds)
        opened = as_utc(conversation.get("opened_at") or datetime.now(UTC))
        enqueue(
            conn,
            conversation["instance_id"],
            conversation["id"],
            contact_key=conversation.get("contact_key"),
            run_after=max(opened + settle, datetime.now(UTC)),
        )
        return None  # decided later by the routing worker


register_router("llm", LLMQueueRouter)


class RoutingWorker:
    """Takes routing jobs and decides them; safe to run several (processes or machines) at once."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings | None = None,
        *,
        client: LLMClient | None = None,
        worker_id: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings or get_settings()
        self._own_client = client is None
        self.client = client if client is not None else LLMClient.from_settings(self.settings)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self) & 0xFFFF:x}"
        self.batch_size = batch_size or max(4, self.settings.llm_max_concurrency)
        self.lease_seconds = max(60.0, self.settings.llm_timeout_seconds * (self.settings.llm_max_retries + 1) * 2)
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, self.settings.llm_max_concurrency), thread_name_prefix="route"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._own_client and self.client is not None:
            self.client.close()

    # --- queue ---------------------------------------------------------------------------------
    def discover(self, now: datetime | None = None) -> int:
        """Queue open, unrouted conversations of ``llm``-routed instances that have no job yet."""
        now = now or datetime.now(UTC)
        settle = timedelta(seconds=self.settings.llm_route_settle_seconds)
        with self.engine.connect() as conn:
            routed = [
                iid
                for iid, routing in conn.execute(select(instances.c.id, instances.c.routing))
                if isinstance(routing, dict) and routing.get("router") == "llm"
            ]
            if not routed:
                return 0
            c = conversations
            has_job = exists().where(llm_jobs.c.kind == KIND_ROUTE, llm_jobs.c.conversation_id == c.c.id)
            handled = exists().where(
                actions.c.conversation_id == c.c.id, actions.c.action.in_(("route", "assign", "transfer"))
            )
            rows = conn.execute(
                select(c.c.id, c.c.instance_id, c.c.contact_key, c.c.opened_at).where(
                    c.c.instance_id.in_(routed),
                    c.c.status == "open",
                    c.c.assignee_id.is_(None),
                    c.c.opened_at >= now - DISCOVER_LOOKBACK,
                    ~has_job,
                    ~handled,
                )
            ).all()
        added = 0
        if rows:
            with self.engine.begin() as conn:
                for conv_id, instance_id, contact_key, opened_at in rows:
                    opened = as_utc(opened_at)
                    added += enqueue(conn, instance_id, conv_id, contact_key=contact_key, run_after=opened + settle)
        return added

    def run_once(self) -> int:
        """Discover, claim a batch and decide it (LLM calls in parallel); returns jobs handled."""
        self.discover()
        jobs = claim(self.engine, self.worker_id, limit=self.batch_size, lease_seconds=self.lease_seconds)
        if not jobs:
            return 0
        list(self._pool.map(self._handle, jobs))
        return len(jobs)

    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        poll = self.settings.llm_route_poll_ms / 1000
        log.info("routing worker started", worker=self.worker_id, llm=self.client is not None)
        last_purge = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() - last_purge >= PURGE_EVERY_SECONDS:
                    last_purge = time.monotonic()
                    purge(self.engine, KEEP_FINISHED_JOBS)
                handled = self.run_once()
            except Exception as exc:  # the database may be briefly unavailable: keep going
                log.warning("routing worker error", error=type(exc).__name__)
                handled = 0
            if not handled:
                stop.wait(poll)

    # --- one job -------------------------------------------------------------------------------
    def _handle(self, job: Job) -> None:
        try:
            result = self.decide_and_apply(job)
            log.info("routing decided", conversation_id=job.conversation_id, **_loggable(result))
        except LeaseLostError:
            log.warning("routing lease lost", conversation_id=job.conversation_id)
        except (ConflictError, InvalidError, NotFoundError) as exc:
            status = retry_later(self.engine, job, self.worker_id, f"{type(exc).__name__}: {exc}")
            log.info("routing retry", conversation_id=job.conversation_id, reason=type(exc).__name__, status=status)
        except Exception as exc:
            status = retry_later(self.engine, job, self.worker_id, type(exc).__name__)
            log.warning("routing job error", conversation_id=job.conversation_id, error=type(exc).__name__)

    def decide_and_apply(self, job: Job) -> dict[str, Any]:
        started = time.perf_counter()
        with self.engine.connect() as conn:
            conv = conn.execute(select(conversations).where(conversations.c.id == job.conversation_id)).first()
            if conv is None or conv.status != "open" or conv.assignee_id is not None:
                skipped = "missing" if conv is None else ("closed" if conv.status != "open" else "assigned")
                return self._finish(job, {"skipped": skipped})
            inst = conn.execute(
                select(
                    instances.c.account_id, instances.c.timezone, instances.c.business_hours, instances.c.routing
                ).where(instances.c.id == job.instance_id)
            ).one()
            texts = [
                t or ""
                for t in conn.execute(
                    select(messages.c.text)
                    .where(messages.c.conversation_id == job.conversation_id, messages.c.direction == "inbound")
                    .order_by(messages.c.timestamp)
                    .limit(FIRST_MESSAGES)
                ).scalars()
            ]
            team_rows = conn.execute(
                select(teams.c.id, teams.c.name).where(teams.c.instance_id == job.instance_id).order_by(teams.c.id)
            ).all()
        config = RoutingConfig.parse(inst.routing if isinstance(inst.routing, dict) else None)
        hours = instance_config.load(job.instance_id, inst.timezone, inst.business_hours, None)
        open_now = hours.is_open(datetime.now(UTC))
        proposal = keyword_proposal(config, texts)
        if proposal is None and (open_now or not config.after_hours_team_id):
            proposal, why = self._llm_proposal(inst.account_id, config, texts, [(r.id, r.name) for r in team_rows])
            if proposal is None:
                proposal = fallback_proposal(config, texts, open_now, why)
        if proposal is None:
            proposal = fallback_proposal(config, texts, open_now)
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        return self._apply(job, proposal, latency_ms)

    def _llm_proposal(
        self, account_id: str, config: RoutingConfig, texts: Sequence[str], candidates: list[tuple[str, str]]
    ) -> tuple[Proposal | None, str | None]:
        """An LLM proposal, or (None, why) when the LLM is not used or failed."""
        if self.client is None:
            return None, None
        if not config.use_llm:
            return None, None
        if not candidates:
            return None, "no_teams"
        if not any(t.strip() for t in texts):
            return None, "no_text"
        s = self.settings
        transcript, _ = render([TranscriptMessage("inbound", "text", t) for t in texts], ROUTE_TOKEN_BUDGET)
        team_ids = [tid for tid, _ in candidates]
        key = (
            content_hash(transcript, (s.llm_prompt_version, json.dumps(candidates))),
            s.llm_prompt_version,
            self.client.model,
        )
        hit = cache_get_many(self.engine, account_id, PURPOSE, [key]).get(key)
        if hit is not None:
            with self.engine.begin() as conn:
                add_usage(conn, account_id, PURPOSE, cache_hits=1)
            return _llm_to_proposal(hit.result, self.client.model, cached=True), None
        with self.engine.connect() as conn:
            spent = usage_today(conn, account_id)
        if spent.requests >= s.llm_daily_request_budget or spent.tokens >= s.llm_daily_token_budget:
            return None, "budget"
        schema = routing_schema(team_ids)
        try:
            result = self.client.complete(
                prompts.routing_messages(transcript, candidates, schema),
                schema_name="routing_decision",
                schema=schema,
                parse=lambda data: parse_routing(data, team_ids),
                max_tokens=300,
                deadline=s.llm_route_deadline_seconds,
            )
        except LLMError as exc:
            with self.engine.begin() as conn:
                add_usage(
                    conn,
                    account_id,
                    PURPOSE,
                    requests=exc.usage.requests,
                    prompt_tokens=exc.usage.prompt_tokens,
                    completion_tokens=exc.usage.completion_tokens,
                    failures=1,
                )
            return None, exc.reason.split(":")[0].replace(" ", "_")
        answer = result.value.model_dump()
        with self.engine.begin() as conn:
            add_usage(
                conn,
                account_id,
                PURPOSE,
                requests=result.usage.requests,
                prompt_tokens=result.usage.prompt_tokens,
                completion_tokens=result.usage.completion_tokens,
            )
            cache_put_many(
                conn,
                account_id,
                PURPOSE,
                {key: CachedAnswer(answer, result.usage.prompt_tokens, result.usage.completion_tokens)},
            )
        return _llm_to_proposal(answer, result.model, cached=False, attempts=result.attempts), None

    def _apply(self, job: Job, proposal: Proposal, latency_ms: float) -> dict[str, Any]:
        details: dict[str, Any] = {
            "source": proposal.source,
            "reason": proposal.reason,
            "urgency": proposal.urgency,
            "priority": proposal.priority,
            "latency_ms": latency_ms,
            **proposal.details,
        }
        if proposal.model:
            details["model"] = proposal.model
            details["prompt_version"] = self.settings.llm_prompt_version
        if proposal.confidence is not None:
            details["confidence"] = proposal.confidence
        with self.engine.begin() as conn:
            attendant = pick_round_robin(conn, job.instance_id, proposal.team_id) if proposal.team_id else None
            result = {"team_id": proposal.team_id, "attendant_id": attendant, **details}
            if proposal.team_id is None and attendant is None:
                result["skipped"] = "no_team"
            # Mark the job done first: if this worker lost its lease, nothing of this transaction is kept.
            if not finish(conn, job, self.worker_id, result):
                raise LeaseLostError(job.id)
            if "skipped" not in result:
                act_in(
                    conn,
                    None,
                    job.conversation_id,
                    "route",
                    actor_id="router",
                    attendant_id=attendant,
                    team_id=proposal.team_id,
                    details=details,
                )
        return result

    def _finish(self, job: Job, result: dict[str, Any]) -> dict[str, Any]:
        with self.engine.begin() as conn:
            finish(conn, job, self.worker_id, result)
        return result


def _llm_to_proposal(answer: dict[str, Any], model: str, *, cached: bool, attempts: int = 0) -> Proposal:
    urgency = answer.get("urgency", "low")
    return Proposal(
        team_id=answer["team_id"],
        source="llm",
        reason="llm",
        urgency=urgency,
        priority=int(answer.get("priority") or PRIORITY_BY_URGENCY.get(urgency, 3)),
        confidence=float(answer["confidence"]),
        model=model,
        details={"cached": cached, **({"attempts": attempts} if attempts else {})},
    )


def _loggable(result: dict[str, Any]) -> dict[str, Any]:
    keep = ("team_id", "attendant_id", "source", "reason", "model", "confidence", "latency_ms", "skipped")
    return {k: result[k] for k in keep if k in result}
