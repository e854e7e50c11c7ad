"""``beazap llm …``: conversation analysis batch, routing worker, routing rules, usage, server check."""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime, timedelta

import typer

from beazap.commands.common import console, fail, setup

llm_app = typer.Typer(help="LLM routing and conversation analysis (works without an LLM: rules).", no_args_is_help=True)


@llm_app.command("analyze")
def analyze() -> None:
    """Analyse every closed conversation in silver into gold/conversation_insights (cached: only new
    or changed conversations reach the LLM)."""
    setup()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlalchemy.exc import OperationalError

    from core.settings import get_settings
    from llm.insights import build_insights
    from storage.db import get_engine
    from storage.lake import Lake

    settings = get_settings()
    engine = get_engine(settings)
    columns = (TextColumn("analysing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("analyse", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            stats = build_insights(Lake.from_settings(settings), engine=engine, settings=settings, progress=report)
        except OperationalError as exc:
            fail(f"cannot reach the operational database: {exc.orig}")
    s = stats["conversation_insights"]
    mode = f"LLM {settings.llm_model}" if settings.llm_base_url else "rules (no LLM configured)"
    console.print(
        f"{s['rows']} conversations analysed with {mode} in {s['seconds']} s: "
        f"{s.get('llm_ok', 0)} by the LLM, {s.get('cache_hits', 0)} from cache, {s.get('rules', 0)} by rules, "
        f"{s.get('failed', 0)} failed; {s.get('llm_requests', 0)} requests, "
        f"{s.get('prompt_tokens', 0) + s.get('completion_tokens', 0)} tokens",
        soft_wrap=True,
    )
    if s.get("budget_exhausted"):
        console.print(f"[yellow]daily budget reached: {s['budget_exhausted']} conversations fell back to rules")


@llm_app.command("route-worker")
def route_worker(once: bool = typer.Option(False, "--once", help="Handle the jobs due now and exit.")) -> None:
    """Route new conversations of instances whose routing.router is "llm" (rules first, then the LLM)."""
    setup()
    from sqlalchemy.exc import OperationalError

    from live.routing import RoutingWorker
    from storage.db import get_engine

    worker = RoutingWorker(get_engine())
    try:
        if once:
            handled = total = 0
            while handled := worker.run_once():
                total += handled
            console.print(f"routed {total} conversations")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        worker.run_forever(stop)
    except OperationalError as exc:
        fail(f"cannot reach the operational database: {exc.orig}")
    finally:
        worker.close()


@llm_app.command("routing")
def routing(
    instance_id: str = typer.Argument(..., help="Instance id."),
    default_team: str | None = typer.Option(None, help="Team when nothing else decides."),
    after_hours_team: str | None = typer.Option(None, help="Team outside business hours."),
    rule: list[str] = typer.Option(
        [], help="TEAM_ID=kw1,kw2[:urgency] keyword rule (repeat; replaces existing rules)."
    ),
    use_llm: bool | None = typer.Option(None, "--llm/--no-llm", help="Ask the LLM when no rule matches."),
    enable: bool = typer.Option(True, help="Set router=llm and auto_assign=true for this instance."),
) -> None:
    """Show or change an instance's routing configuration (instances.routing)."""
    setup()
    from sqlalchemy import select, update

    from storage.db import get_engine
    from storage.tables import instances

    engine = get_engine()
    with engine.begin() as conn:
        current = conn.execute(select(instances.c.routing).where(instances.c.id == instance_id)).first()
        if current is None:
            fail(f"unknown instance: {instance_id}")
        config = dict(current[0] or {})
        if enable:
            config.update(router="llm", auto_assign=True)
        if default_team is not None:
            config["default_team_id"] = default_team
        if after_hours_team is not None:
            config["after_hours_team_id"] = after_hours_team
        if use_llm is not None:
            config["use_llm"] = use_llm
        if rule:
            config["rules"] = [_parse_rule(r) for r in rule]
        conn.execute(update(instances).where(instances.c.id == instance_id).values(routing=config))
    console.print_json(json.dumps(config, ensure_ascii=False))


def _parse_rule(text: str) -> dict[str, object]:
    team, sep, rest = text.partition("=")
    if not sep or not team or not rest:
        fail(f"rule must look like TEAM_ID=kw1,kw2[:urgency], got {text!r}")
    keywords, _, urgency = rest.partition(":")
    out: dict[str, object] = {"team_id": team, "keywords": [k.strip() for k in keywords.split(",") if k.strip()]}
    if urgency:
        if urgency not in ("low", "medium", "high"):
            fail("urgency must be low, medium or high")
        out["urgency"] = urgency
    return out


@llm_app.command("usage")
def usage(
    account_id: str = typer.Argument(..., help="Tenant (account) id."),
    days: int = typer.Option(7, min=1, max=400, help="Days back (UTC)."),
) -> None:
    """LLM requests, tokens, failures and cache hits of one tenant per day and purpose."""
    setup()
    from rich.table import Table

    from llm.store import usage_report
    from storage.db import get_engine

    end = datetime.now(UTC).date()
    rows = usage_report(get_engine(), account_id, end - timedelta(days=days - 1), end)
    table = Table("day", "purpose", "requests", "prompt tokens", "completion tokens", "failures", "cache hits")
    for r in rows:
        table.add_row(
            r["day"],
            r["purpose"],
            *(str(r[k]) for k in ("requests", "prompt_tokens", "completion_tokens", "failures", "cache_hits")),
        )
    console.print(table)


@llm_app.command("check")
def check() -> None:
    """Send one synthetic conversation to the configured LLM server and validate the answer."""
    setup()
    from core.settings import get_settings
    from llm.analysis import ConversationInput, analyze_with_llm, prepare
    from llm.client import LLMClient
    from llm.transcript import TranscriptMessage

    settings = get_settings()
    client = LLMClient.from_settings(settings)
    if client is None:
        fail("no LLM configured (set BEAZAP_LLM_BASE_URL); BeaZap uses rules without one")

    now = datetime.now(UTC)
    conv = ConversationInput(
        "check", "check", None, "resolved", now, now, now.date(), None, None,
        [TranscriptMessage("inbound", "text", "Meu boleto venceu, podem enviar outro?"),
         TranscriptMessage("outbound", "text", "Claro, enviamos agora.")],
    )  # fmt: skip
    request = prepare(conv, settings.llm_topics, settings.llm_transcript_token_budget, settings.llm_prompt_version)
    outcome = analyze_with_llm(client, request, settings.llm_topics)
    client.close()
    if outcome.status != "ok" or outcome.analysis is None:
        fail(f"the LLM server did not give a valid answer: {outcome.error}")
    console.print(
        f"ok: {settings.llm_model} answered a valid analysis in {outcome.latency_ms:.0f} ms "
        f"({outcome.usage.requests} request(s), {outcome.usage.total_tokens} tokens): {outcome.analysis.topic}",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(llm_app, name="llm")
