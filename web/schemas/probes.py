"""Schemas of probe schedules, runs and findings (clause 19)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ipam.models import FindingKind, FindingStatus, RunStatus, RunTrigger

from .common import In, Instant, ListQuery, Out, Query, Ref, ShortText, Text

Method = Literal["icmp", "tcp", "dns", "blocklist"]
Port = int


class ScheduleFields(In):
    name: ShortText | None = None
    pool: Ref | None = Field(None, description="a pool schedule sweeps the pool")
    customer: Ref | None = Field(None, description="a customer schedule probes its holdings")
    cron: ShortText | None = Field(None, description="five fields, or six with seconds first")
    methods: list[Method] | ShortText | None = Field(None, max_length=4)
    tcp_ports: list[int] | ShortText | None = Field(None, max_length=1000)
    dark_after: int | ShortText | None = Field(None, description="runs without an answer")
    enabled: bool | None = None
    site: ShortText | None = Field(
        None, description="the data centre its runs are probed from; empty: its pool's"
    )


class ScheduleIn(ScheduleFields):
    name: ShortText
    cron: ShortText


class ScheduleOut(Out):
    id: int
    name: str
    pool_id: int | None
    customer_id: int | None
    cron: str
    methods: list[str]
    tcp_ports: list[int]
    dark_after: int
    enabled: bool
    created_at: Instant
    updated_at: Instant | None


class RunQuery(ListQuery):
    schedule: ShortText | None = None
    status: Literal["queued", "running", "done", "failed"] | None = None


class RunOut(Out):
    id: int
    schedule_id: int
    trigger: RunTrigger
    status: RunStatus
    requested_by: str | None
    queued_at: Instant
    started_at: Instant | None
    finished_at: Instant | None
    targets: int | None
    answered: int | None
    findings_raised: int | None
    error: str | None
    site: str = "default"  # the data centre whose worker takes it (with a broker)
    claimed_by: str | None = None  # that worker
    attempts: int = 0  # claims: more than one when a worker died mid-run


class ObservationOut(Out):
    address: str
    method: str
    answered: bool
    rtt_ms: float | None
    detail: str | None
    observed_at: Instant


class RunDetailQuery(Query):
    limit: int = Field(500, ge=1, le=5000, description="observations to show")


class RunDetail(RunOut):
    observations: list[ObservationOut]


class FindingQuery(ListQuery):
    status: Literal["open", "resolved", "all"] = "open"
    kind: FindingKind | None = None
    customer: ShortText | None = None
    pool: ShortText | None = None


class FindingOut(Out):
    id: int
    kind: FindingKind
    prefix: str
    status: FindingStatus
    summary: str
    customer_id: int | None
    sublessee_id: int | None
    allocation_id: int | None
    pool_id: int | None
    schedule_id: int | None
    first_seen: Instant
    last_seen: Instant
    count: int
    evidence: Any
    resolved_at: Instant | None
    resolved_by: str | None
    resolution: str | None


class ResolveIn(In):
    comment: Text | None = None
