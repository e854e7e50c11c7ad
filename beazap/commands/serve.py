"""``beazap serve``: run the API (webhook receiver, metrics and operational API) with uvicorn."""

from __future__ import annotations

import os
import shutil
import tempfile

import typer

from beazap.commands.common import fail, setup


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind (0.0.0.0 to accept from other machines)."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Worker processes; each runs its own bronze group-commit writer."),
    forwarded_allow_ips: str | None = typer.Option(
        None, help="Proxies trusted for X-Forwarded-For (source IP of webhooks behind a load balancer)."
    ),
    access_log: bool = typer.Option(False, help="Log every request (off by default: webhooks are many)."),
    migrate_db: bool = typer.Option(True, "--migrate/--no-migrate", help="Upgrade the ops database first."),
) -> None:
    """Serve the BeaZap API: POST /webhooks/evolution lands Evolution webhooks in bronze.

    Runs database migrations first, then uvicorn with the app factory ``api.app:create_app``.
    With --workers > 1 Prometheus metrics are aggregated across workers (multiprocess mode).
    """
    setup()
    import uvicorn

    from core.logging import get_logger
    from core.settings import get_settings

    log = get_logger("beazap.serve")
    settings = get_settings()
    if migrate_db:
        from storage import migrate
        from storage.db import get_engine

        try:
            migrate.upgrade(get_engine(settings))
        except Exception as exc:
            fail(f"cannot migrate the operational database: {type(exc).__name__}: {exc}")

    prom_dir: str | None = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        prom_dir = tempfile.mkdtemp(prefix="beazap-prometheus-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = prom_dir
    log.info("serving", host=host, port=port, workers=workers)
    try:
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=forwarded_allow_ips is not None,
            forwarded_allow_ips=forwarded_allow_ips,
            access_log=access_log,
            log_config=None,
            timeout_graceful_shutdown=30,
        )
    finally:
        if prom_dir:
            shutil.rmtree(prom_dir, ignore_errors=True)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""
    app.command("serve")(serve)
