"""Start and stop the receiver with the FastAPI application (``api.app`` lifespan)."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.ingest.receiver import Receiver
from core.logging import configure_logging
from core.settings import Settings, get_settings
from storage.instances import InstanceCredential, load_credentials
from storage.lake import Lake

_gc_frozen = False


def build_receiver(app: FastAPI, settings: Settings) -> Receiver:
    """A receiver over the configured lake, reading credentials from the app's (or the default) engine."""

    def loader() -> dict[str, InstanceCredential]:
        from storage.db import get_engine

        engine = getattr(app.state, "engine", None) or get_engine(settings)
        return load_credentials(engine)

    return Receiver(settings, Lake.from_settings(settings), loader)


@asynccontextmanager
async def receiver_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the receiver (bronze writers + credential cache) while the app serves, when enabled."""
    settings: Settings = getattr(app.state, "settings", None) or get_settings()
    if not logging.getLogger().handlers:  # a uvicorn worker process started without our logging
        configure_logging(settings.log_level, settings.log_json)
    if not settings.receiver_enabled:
        app.state.receiver = None
        yield
        return
    receiver = build_receiver(app, settings)
    await receiver.start()
    # Everything imported and built so far lives as long as the process: move it out of the
    # garbage collector's view so full collections stay short (no event-loop pauses under load).
    global _gc_frozen
    if not _gc_frozen:
        gc.collect()
        gc.freeze()
        _gc_frozen = True
    app.state.receiver = receiver
    try:
        yield
    finally:
        app.state.receiver = None
        await receiver.stop()
