"""Response models of the metrics API (they document the OpenAPI schema, with examples)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Period(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from", serialization_alias="from", examples=["2026-03-01"])
    to: date = Field(examples=["2026-03-31"])


class NoData(BaseModel):
    """Set when the period holds no data: says so, with the first and last day that do have data."""

    message: str = Field(examples=["No data in 2026-11-08..2026-12-07; data exists from 2026-03-01 to 2026-03-31."])
    message_pt: str = Field(examples=["Sem dados em 2026-11-08..2026-12-07; há dados de 2026-03-01 a 2026-03-31."])
    first_day: date | None = Field(None, description="First local day with data (null: nothing built yet).")
    last_day: date | None = Field(None, description="Last local day with data.")


class OverviewFigures(BaseModel):
    messages_inbound: int = Field(0, examples=[1520])
    messages_outbound: int = Field(0, examples=[1688])
    messages_automated: int = Field(0, examples=[212])
    conversations_opened: int = Field(0, examples=[410])
    conversations_opened_inbound: int = Field(0, examples=[352], description="Opened by the customer.")
    conversations_opened_outbound: int = Field(0, examples=[58], description="Opened by the business.")
    conversations_resolved: int = Field(0, examples=[377])
    conversations_expired: int = Field(0, examples=[21])
    conversations_abandoned: int = Field(
        0,
        examples=[3],
        description="Customer-opened conversations never answered within the abandonment limit "
        "(BEAZAP_ABANDON_AFTER_HOURS); each is a first-response breach.",
    )
    conversations_reopened: int = Field(0, examples=[12])
    backlog_end: int = Field(0, description="Conversations still open at the end of the period's last day.")
    frt_mean_seconds: float | None = Field(None, examples=[540.2])
    frt_median_seconds: float | None = Field(None, examples=[300.0])
    frt_p90_seconds: float | None = Field(None, examples=[2400.0])
    frt_business_median_seconds: float | None = None
    resolution_median_seconds: float | None = None
    resolution_p90_seconds: float | None = None
    frt_sla_achievement_pct: float | None = Field(None, examples=[91.5])
    next_reply_sla_achievement_pct: float | None = None
    resolution_sla_achievement_pct: float | None = None
    calls_offered: int = 0
    calls_missed: int = 0


class OverviewResponse(BaseModel):
    instance_ids: list[str]
    period: Period
    previous_period: Period
    no_data: NoData | None = Field(None, description="Present only when the period holds no data.")
    current: OverviewFigures
    previous: OverviewFigures
    change_pct: dict[str, float | None] = Field(
        description="(current − previous) / previous × 100 per figure; null when previous is 0 or missing."
    )


class VolumeRow(BaseModel):
    bucket: str = Field(examples=["2026-03-02T10:00", "2026-03-02", "2026-W10", "2026-03"])
    bucket_start: date
    instance_id: str | None = Field(None, description="Set when by=instance.")
    key: str | None = Field(None, description="Kind or chat type when by=kind|chat_type.")
    inbound: int = 0
    outbound: int = 0
    automated: int = 0
    total: int = 0
    conversations_opened: int | None = Field(None, description="Day/week/month granularity only.")
    conversations_opened_inbound: int | None = Field(None, description="Of those opened: by the customer.")
    conversations_opened_outbound: int | None = Field(None, description="Of those opened: by the business.")
    conversations_resolved: int | None = None
    drilldown: str = Field(description="URL of the conversations opened in this bucket.")


class VolumeTotals(BaseModel):
    inbound: int = 0
    outbound: int = 0
    automated: int = 0
    total: int = 0


class VolumeResponse(BaseModel):
    granularity: str
    period: Period
    previous_period: Period
    no_data: NoData | None = Field(None, description="Present only when the period holds no data.")
    rows: list[VolumeRow]
    totals: VolumeTotals
    previous_totals: VolumeTotals
    change_pct: dict[str, float | None]


class ActivityFigures(BaseModel):
    """Message activity and contacts of a bucket or a period (docs/metrics.md § Message activity, § Contacts)."""

    edited: int = Field(0, examples=[14], description="Messages edited (on the day they were sent).")
    revoked: int = Field(0, examples=[3], description="Messages deleted for everyone.")
    reactions: int = Field(0, examples=[41], description="Reactions currently on the messages sent.")
    media_image: int = 0
    media_audio: int = 0
    media_video: int = 0
    media_document: int = 0
    media_sticker: int = 0
    media_location: int = 0
    media_contact: int = Field(0, description="Contact cards (vCards) sent or received.")
    contacts: int = Field(0, examples=[120], description="Distinct contacts with direct-chat messages.")
    new_contacts: int = Field(0, examples=[35], description="Of those: first message ever in the bucket/period.")
    returning_contacts: int = Field(0, examples=[85], description="Of those: seen before the bucket/period.")


class ActivityRow(ActivityFigures):
    bucket: str = Field(examples=["2026-03-02", "2026-W10", "2026-03"])
    bucket_start: date


class ActivityResponse(BaseModel):
    granularity: str
    period: Period
    previous_period: Period
    no_data: NoData | None = Field(None, description="Present only when the period holds no data.")
    rows: list[ActivityRow]
    totals: ActivityFigures
    previous_totals: ActivityFigures
    change_pct: dict[str, float | None]


class HeatmapCell(BaseModel):
    weekday: int = Field(ge=1, le=7, description="ISO weekday, 1 = Monday, instance time zone.")
    hour: int = Field(ge=0, le=23)
    inbound_messages: int = 0
    conversations_opened: int = 0
    drilldown: str


class HeatmapTotals(BaseModel):
    inbound_messages: int = 0
    conversations_opened: int = 0


class HeatmapResponse(BaseModel):
    period: Period
    previous_period: Period
    no_data: NoData | None = Field(None, description="Present only when the period holds no data.")
    cells: list[HeatmapCell]
    totals: HeatmapTotals
    previous_totals: HeatmapTotals
    change_pct: dict[str, float | None]


class ClockStats(BaseModel):
    clock: str = Field(examples=["first_response"], description="first_response | next_reply | resolution | handling")
    basis: str = Field(examples=["business"], description="calendar | business")
    count: int = 0
    mean_seconds: float | None = None
    median_seconds: float | None = None
    p90_seconds: float | None = None
    buckets: dict[str, int] = Field(default_factory=dict, examples=[{"<1m": 3, "1-5m": 10, "5-15m": 4}])
    sla_met: int = 0
    sla_breached: int = 0
    sla_pending: int = 0
    achievement_pct: float | None = None
    breached_overdue_seconds: float | None = Field(None, description="Total time past target of the breaches.")


class SlaDay(BaseModel):
    day: date
    conversations: int = 0
    frt_median_seconds: float | None = None
    frt_p90_seconds: float | None = None
    frt_achievement_pct: float | None = None
    next_reply_achievement_pct: float | None = None
    resolution_median_seconds: float | None = None
    resolution_achievement_pct: float | None = None
    drilldown: str


class SlaResponse(BaseModel):
    period: Period
    previous_period: Period
    no_data: NoData | None = Field(None, description="Present only when the period holds no data.")
    clocks: list[ClockStats]
    previous_clocks: list[ClockStats]
    rows: list[SlaDay]


class PerformanceFigures(BaseModel):
    messages_sent: int = 0
    conversations_assigned: int = 0
    conversations_resolved: int = 0
    first_responses: int = 0
    frt_median_seconds: float | None = None
    frt_p90_seconds: float | None = None
    frt_achievement_pct: float | None = None
    resolution_median_seconds: float | None = None
    resolution_p90_seconds: float | None = None


class PerformanceRow(PerformanceFigures):
    id: str = Field(description="Attendant id (attendants) or team id (teams).", examples=["att-1"])
    team_id: str | None = None
    rank: int
    previous: PerformanceFigures
    drilldown: str


class PerformanceResponse(BaseModel):
    period: Period
    previous_period: Period
    no_data: NoData | None = Field(None, description="Present only when the period holds no data.")
    sort: str
    rows: list[PerformanceRow]


class CallFigures(BaseModel):
    offered: int = 0
    accepted: int = 0
    rejected: int = 0
    missed: int = 0
    voice: int = 0
    video: int = 0


class CallDay(CallFigures):
    day: date


class CallsResponse(BaseModel):
    period: Period
    previous_period: Period
    no_data: NoData | None = Field(None, description="Present only when the period holds no data.")
    totals: CallFigures
    previous_totals: CallFigures
    change_pct: dict[str, float | None]
    rows: list[CallDay]


class ConversationFact(BaseModel):
    model_config = ConfigDict(extra="allow")

    conversation_id: str
    instance_id: str
    origin: str | None = None
    status: str | None = None
    opened_at: datetime | None = None
    opened_day: date | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    first_responder_id: str | None = None
    assignee_id: str | None = None
    team_id: str | None = None
    frt_seconds: float | None = None
    frt_business_seconds: float | None = None
    resolution_seconds: float | None = None
    frt_sla: str | None = None
    next_reply_sla: str | None = None
    resolution_sla: str | None = None
    is_reopen: bool | None = None
    reopened: bool | None = None


class FactsPage(BaseModel):
    rows: list[ConversationFact]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last page.")


def jsonable(value: Any) -> Any:
    """Decimal/NaN-safe conversion of DuckDB values for models."""
    if isinstance(value, float) and value != value:
        return None
    return value
