"""A campaign over time: its recent minute points and its follow-ups ahead (api/routes/timeline.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AbandonCount(BaseModel):
    abandoned: int
    human_answered: int
    rate: float = Field(description="abandoned / human_answered (0 when none)")


class HistoryPoint(BaseModel):
    t: str = Field(description="start of the minute (UTC) of the last frame of that minute")
    dials_per_sec: float
    connected_per_hour: float
    calls_per_min: float
    active_calls: int
    waiting_for_agent: int
    pending: int
    abandon_today: AbandonCount
    abandon_30d: AbandonCount
    ceiling: float = Field(description="the campaign's abandon ceiling then")


class CampaignHistory(BaseModel):
    campaign_id: str
    resolution_s: int = Field(description="seconds per point: 60")
    points: list[HistoryPoint] = Field(description="ascending by t; only the minutes within `minutes` of the "
                                                   "newest point, and only minutes that had a frame")


class FollowupStatus(BaseModel):
    count: int = Field(description="contacts now in this status")
    due_now: int = Field(description="of them, due at or before as_of (a due time counts from the start of its "
                                     "minute)")
    without_due: int = Field(description="of them, whose latest status named no due_at")
    next_due_at: str | None = Field(description="start of the earliest due minute still ahead; null when none")
    last_due_at: str | None = Field(description="start of the latest due minute; null when none")


class FollowupHour(BaseModel):
    hour: str = Field(description="start of a UTC hour")
    followup_scheduled: int
    retrying: int


class FollowupCounts(BaseModel):
    followup_scheduled: int
    retrying: int


class CampaignFollowups(BaseModel):
    campaign_id: str
    as_of: str | None = Field(description="the campaign watermark the view was built at")
    followup_scheduled: FollowupStatus
    retrying: FollowupStatus
    by_hour: list[FollowupHour] = Field(description="due in the next 48 hours, by hour: only hours with something "
                                                    "due, ascending")
    later: FollowupCounts = Field(description="due more than 48 hours after as_of")
