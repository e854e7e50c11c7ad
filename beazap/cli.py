"""The ``beazap`` command line (typer). Each area registers its commands from ``beazap/commands``.

Heavy imports (Dagster, DuckDB, uvicorn) happen inside the commands, so ``beazap --help`` is fast.
"""

from __future__ import annotations

import typer

from beazap.commands import (
    attendant,
    build,
    db,
    demo,
    erase,
    instance,
    llm,
    retention,
    scrub,
    serve,
    simulate,
    sql,
    team,
    token,
    user,
    worker,
)

app = typer.Typer(
    name="beazap",
    help="BeaZap: WhatsApp customer-service analytics on Evolution API.\n\n"
    "Webhooks land in a Delta lake (bronze), are normalized (silver) and aggregated with DuckDB (gold); "
    "a live operational store (SQLite or PostgreSQL) serves attendants. Configure with BEAZAP_* "
    "environment variables or a .env file.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

for module in (
    serve,
    simulate,
    demo,
    build,
    sql,
    db,
    instance,
    team,
    attendant,
    token,
    user,
    worker,
    retention,
    erase,
    scrub,
    llm,
):
    module.register(app)


if __name__ == "__main__":
    app()
