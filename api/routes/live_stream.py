"""The live queue stream: ``GET /v1/live/stream`` (Server-Sent Events).

Each event is a conversation's new queue state (``waiting`` / ``assigned`` / ``resolved`` /
``expired``) with its SLA state and time to the next breach, pushed by the process's single
:class:`~live.feed.ChangeFeed`. ``id:`` is the change id: a client (``EventSource`` does it by itself)
that reconnects with ``Last-Event-ID`` first receives what it missed, then the live events, without
duplicates. When too much was missed an ``event: reset`` asks it to reload the queue page.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from api.auth import Scope, allowed_instances
from api.routes.ops_common import ERRORS, engine_of, settings_of
from live.feed import CATCH_UP_LIMIT, ChangeFeed, build_events, encode, now_utc, read_changes
from storage import ops_repo

router = APIRouter(prefix="/v1", tags=["console"], responses=ERRORS)


def live_feed(app: FastAPI) -> ChangeFeed:
    """The process's change feed, started on first use (stopped by :func:`stop_live_feed`)."""
    feed = getattr(app.state, "live_feed", None)
    if feed is None:
        settings = getattr(app.state, "settings", None)
        engine = getattr(app.state, "engine", None)
        if engine is None:
            from storage.db import get_engine

            engine = get_engine()
        feed = ChangeFeed(engine, interval=settings.live_poll_seconds if settings else 0.2)
        app.state.live_feed = feed
        feed.start()
    return feed


async def stop_live_feed(app: FastAPI) -> None:
    feed = getattr(app.state, "live_feed", None)
    if feed is not None:
        await feed.stop()
        app.state.live_feed = None


@router.get(
    "/live/stream",
    summary="Live queue (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "`conversation` events"}},
)
async def live_stream(
    request: Request,
    scope: Scope,
    instance_id: Annotated[list[str] | None, Query()] = None,
    team_id: str | None = None,
    attendant_id: str | None = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Conversation changes of the caller's instances (or ``instance_id``s, optionally one ``team_id``;
    ``attendant_id``: that attendant's view — their own conversations and the unassigned ones)."""
    ids = allowed_instances(scope, instance_id)
    engine = engine_of(request)
    if team_id is not None:
        try:
            team = await asyncio.to_thread(ops_repo.get_team, engine, scope, team_id)
        except ops_repo.NotFoundError:
            raise HTTPException(404, f"team not found: {team_id}") from None
        ids = [i for i in ids if i == team["instance_id"]]
    if attendant_id is not None:
        try:
            person = await asyncio.to_thread(ops_repo.get_attendant, engine, scope, attendant_id)
        except ops_repo.NotFoundError:
            raise HTTPException(404, f"attendant not found: {attendant_id}") from None
        ids = [i for i in ids if i == person["instance_id"]]
    after: int | None = None
    if last_event_id:
        if not last_event_id.isdigit():
            raise HTTPException(422, "Last-Event-ID must be an event id from this stream")
        after = int(last_event_id)
    keepalive = settings_of(request).live_keepalive_seconds
    feed = live_feed(request.app)
    sub = feed.subscribe(ids, team_id, attendant_id)

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n: connected\n\n"
            if after is not None and after < sub.horizon:
                missed = await asyncio.to_thread(
                    read_changes, engine, after, upto=sub.horizon, instance_ids=ids, limit=CATCH_UP_LIMIT + 1
                )
                if len(missed) > CATCH_UP_LIMIT:
                    yield encode({"id": sub.horizon, "reason": "too many missed changes"}, "reset")
                else:
                    for event in await asyncio.to_thread(build_events, engine, missed, now_utc()):
                        if sub.wants(event):
                            yield encode(event)
            while True:
                try:
                    frame = await asyncio.wait_for(sub.queue.get(), keepalive)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if frame is None:  # the feed stopped or this client fell too far behind
                    return
                batch, more = [frame], frame  # whatever else is queued goes out in the same write
                while not sub.queue.empty() and (more := sub.queue.get_nowait()) is not None:
                    batch.append(more)
                yield b"".join(batch)
                if more is None:
                    return
        finally:
            feed.unsubscribe(sub)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
