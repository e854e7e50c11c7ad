"""BeaZap settings: one pydantic-settings model read from ``BEAZAP_*`` env vars and ``.env``.

Every component (receiver, workers, Dagster resources, CLI) builds its configuration from
:func:`get_settings`, so one environment configures the whole deployment.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path(".beazap")


def check_zone(value: str) -> str:
    """``value`` if it is a known IANA time zone, else ``ValueError`` (the one time-zone validation)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like Region/City)") from None
    return value


class Settings(BaseSettings):
    """All BeaZap configuration. Environment variables are ``BEAZAP_<FIELD>`` (upper case)."""

    model_config = SettingsConfigDict(env_prefix="BEAZAP_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- storage -----------------------------------------------------------------------------
    lake_uri: str = Field(
        default=str(DEFAULT_HOME / "lake"),
        description="Root of the Delta lake: a local folder or s3://bucket/prefix.",
    )
    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_HOME / 'beazap.db'}",
        description="Operational store (SQLAlchemy URL): SQLite file by default, postgresql+psycopg://… in production.",
    )
    db_pool_size: int = 10
    db_max_overflow: int = 20
    cache_url: str | None = Field(
        default=None, description="redis://… for the metrics cache; in-process cache when unset."
    )
    # --- metrics API (gold) -------------------------------------------------------------------------
    cache_ttl_seconds: float = Field(default=90.0, gt=0, description="Metrics cache TTL (60–120 s recommended).")
    cache_prefix: str = Field(default="beazap:metrics", description="Key prefix of the metrics cache in Redis.")
    metrics_max_span_days: int = Field(default=400, ge=1, description="Longest from..to range a metrics query may ask.")
    gold_refresh_seconds: float = Field(
        default=2.0, gt=0, description="How often the metrics API checks gold's Delta versions for changes."
    )

    # --- S3 (only read when lake_uri starts with s3://) -------------------------------------------
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_allow_http: bool = False
    s3_conditional_put: bool = Field(
        default=True, description="Use etag conditional put so several writers can commit safely."
    )

    # --- receiver ----------------------------------------------------------------------------------
    max_body_bytes: int = Field(default=5 * 1024 * 1024, description="Webhook bodies above this get 413.")
    group_commit_max_rows: int = Field(default=2000, description="Flush a bronze batch at this many rows.")
    group_commit_max_wait_ms: int = Field(
        default=5, description="…or when the oldest waiting row is this old (an idle writer flushes at once)."
    )
    group_commit_lanes: int = Field(
        default=2, ge=1, description="Bronze commits one receiver process may have in flight at once."
    )
    bronze_fast_commit: bool = Field(
        default=True, description="Constant-cost blind appends on local lakes (false = always delta-rs commits)."
    )
    bronze_fsync: bool = Field(
        default=True,
        description="fsync each bronze group commit (Parquet files, log entry, folders) before answering "
        "(local lakes; false trades power-loss durability for speed).",
    )
    bronze_compact_every_commits: int = Field(
        default=50, ge=0, description="Receiver compacts the bronze partitions it writes every N commits (0 = off)."
    )
    bronze_compact_min_interval_seconds: float = Field(
        default=5.0, ge=0, description="…but at most once per this many seconds (bounds its CPU under load)."
    )
    instance_cache_refresh_seconds: float = Field(
        default=30.0, description="How often the receiver reloads instance tokens from the ops store."
    )
    instance_miss_refresh_seconds: float = Field(
        default=1.0, ge=0, description="Unknown instance/token: reload credentials at most this often."
    )
    receiver_enabled: bool = Field(default=True, description="Run the webhook receiver in this API process.")
    receiver_commit_timeout_seconds: float = Field(
        default=20.0, gt=0, description="A webhook whose bronze commit takes longer is answered 503."
    )

    # --- domain defaults ---------------------------------------------------------------------------
    default_timezone: str = Field(
        default="America/Sao_Paulo", description="IANA time zone of instances registered without one."
    )
    session_timeout_hours: float = Field(default=24.0, description="Inactivity that expires a conversation.")
    reopen_window_hours: float = Field(default=24.0, description="Inbound within this after resolve = reopen.")
    abandon_after_hours: float = Field(
        default=7 * 24.0,
        gt=0,
        description="A customer-opened conversation with no first response for this long is marked abandoned.",
    )

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_zone(value)

    # --- operational store (issue 6) -------------------------------------------------------------
    live_window_days: int = Field(default=90, description="Messages kept in the live store (partitions dropped after).")
    projector_poll_ms: int = Field(default=200, description="How often `beazap worker` looks for new bronze versions.")
    projector_batch_rows: int = Field(default=5000, description="Bronze rows applied per projector transaction.")
    projector_stuck_seconds: float = Field(
        default=120.0,
        gt=0,
        description="/readyz reports the projector stuck when bronze commits wait longer than this to be applied.",
    )
    projector_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a silent `beazap worker` keeps the projector lease before a standby worker takes over.",
    )
    # Defaults of the instance configuration (core/instance_config.py); an instance's stored value wins.
    sla_first_response_minutes: float = Field(default=15.0, gt=0, description="Default first-response target.")
    sla_first_response_basis: Literal["business", "calendar"] = "business"
    sla_next_reply_minutes: float = Field(default=30.0, gt=0, description="Default next-reply target.")
    sla_next_reply_basis: Literal["business", "calendar"] = "business"
    sla_resolution_minutes: float = Field(default=24 * 60.0, gt=0, description="Default resolution target.")
    sla_resolution_basis: Literal["business", "calendar"] = "calendar"
    sla_at_risk_ratio: float = Field(
        default=0.8, gt=0, le=1, description="Open clocks past this share of target are at risk."
    )
    default_business_hours: list[str] = Field(
        default=["mon-fri 08:00-18:00"],
        description='Default weekly schedule, e.g. ["mon-fri 08:00-18:00", "sat 08:00-12:00"] (JSON in the env).',
    )
    evolution_timeout_seconds: float = Field(default=10.0, description="Timeout of one Evolution API call.")
    evolution_retries: int = Field(default=3, description="Attempts on Evolution 5xx/timeouts (with backoff).")
    public_webhook_url: str | None = Field(
        default=None, description="URL Evolution posts webhooks to (POST /v1/instances/{id}/webhook)."
    )
    # --- console: live stream, presence, SLA alerts (issue 15) ----------------------------------
    live_poll_seconds: float = Field(default=0.2, gt=0, description="How often the live stream reads new changes.")
    live_changes_keep_hours: float = Field(
        default=24.0, gt=0, description="How long the live stream's change log is kept for reconnecting clients."
    )
    live_keepalive_seconds: float = Field(default=15.0, gt=0, description="SSE keep-alive comment interval.")
    presence_away_minutes: float = Field(default=5.0, gt=0, description="An attendant silent this long is away.")
    presence_offline_minutes: float = Field(default=15.0, gt=0, description="… and this long is offline.")
    alert_webhook_attempts: int = Field(default=8, ge=1, description="Delivery attempts of one SLA alert webhook.")
    alert_webhook_backoff_seconds: float = Field(
        default=5.0, gt=0, description="First retry delay of an alert webhook (doubles each attempt)."
    )
    alert_webhook_timeout_seconds: float = Field(default=5.0, gt=0, description="Timeout of one alert webhook POST.")

    # --- governance: retention, maintenance, orchestration (issue 7) ------------------------------
    retention_bronze_days: int = Field(default=730, ge=1, description="Raw webhooks kept in bronze (24 months).")
    retention_silver_days: int = Field(default=730, ge=1, description="Silver messages & co. kept (24 months).")
    retention_gold_days: int | None = Field(default=None, description="Gold aggregates kept forever when unset.")
    retention_table_days: dict[str, int] = Field(
        default_factory=dict, description='Per-table override, e.g. {"silver/messages": 365} (JSON in the env).'
    )
    vacuum_retention_hours: int = Field(
        default=168, ge=0, description="Delta time travel kept by scheduled vacuum (files older are deleted)."
    )
    freshness_bronze_minutes: float = Field(default=60.0, description="Bronze older than this fails its check.")
    freshness_gold_minutes: float = Field(default=10.0, description="Gold this far behind bronze fails its check.")
    max_reject_rate: float = Field(default=0.01, description="Silver reject rate above this fails its check.")
    automation_observe_seconds: int = Field(default=10, description="How often Dagster observes bronze versions.")
    gold_partitions_start: date = Field(
        default=date(2024, 1, 1),
        description="First daily partition of the gold assets in Dagster (days before it are still built).",
    )

    # --- LLM routing and analysis (issue 8; docs/llm.md) ---------------------------------------------
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible server (…/v1). Unset = rule-based routing and analysis only."
    )
    llm_api_key: SecretStr | None = Field(default=None, description="API key of the LLM server (never logged).")
    llm_model: str = Field(default="gpt-4o-mini", description="Model name sent to the LLM server.")
    llm_timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of one LLM request.")
    llm_max_retries: int = Field(default=3, ge=1, description="Attempts per LLM request (errors, invalid answers).")
    llm_response_format: str = Field(
        default="json_schema",
        pattern="^(json_schema|json_object|none)$",
        description="How structured output is requested: json_schema (strict), json_object, or none (prompt only).",
    )
    llm_max_concurrency: int = Field(default=16, ge=1, description="LLM requests in flight at most (per process).")
    llm_daily_request_budget: int = Field(default=5000, ge=0, description="LLM requests per tenant per UTC day.")
    llm_daily_token_budget: int = Field(default=5_000_000, ge=0, description="LLM tokens per tenant per UTC day.")
    llm_transcript_token_budget: int = Field(default=2000, ge=100, description="Transcript tokens sent at most.")
    llm_prompt_version: str = Field(default="v1", description="Bump to re-analyse everything with a new prompt.")
    llm_topics: list[str] = Field(
        default=[
            "billing",
            "delivery",
            "technical_support",
            "sales",
            "account",
            "cancellation",
            "complaint",
            "scheduling",
            "other",
        ],
        description="Topic taxonomy of conversation insights (JSON list in the environment).",
    )
    llm_route_settle_seconds: float = Field(
        default=2.0, ge=0, description="Wait after a conversation opens so routing sees its first messages."
    )
    llm_route_poll_ms: int = Field(default=500, ge=10, description="How often the routing worker polls its queue.")
    llm_route_deadline_seconds: float = Field(
        default=4.0,
        gt=0,
        description="Latency budget of one LLM routing decision (attempts and backoff); then the rules decide.",
    )

    # --- silver ------------------------------------------------------------------------------------
    silver_memory_limit: str = Field(default="3GB", description="DuckDB memory limit for silver runs (spills beyond).")
    silver_threads: int | None = Field(default=None, description="DuckDB threads for silver (default: all cores).")
    silver_chunk_rows: int = Field(default=500_000, ge=1, description="Bronze rows parsed per chunk (bounds memory).")
    silver_rebuild_chunk_rows: int = Field(
        default=1_000_000,
        ge=0,
        description="Bronze rows per window of a full silver rebuild (bounds its memory); 0 = one pass.",
    )

    # --- logging -----------------------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = Field(default=False, description="JSON log lines (production) instead of console.")

    @field_validator("lake_uri")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/") or value

    @property
    def lake_is_s3(self) -> bool:
        return self.lake_uri.startswith("s3://")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached). Tests call ``get_settings.cache_clear()`` after env changes."""
    return Settings()
