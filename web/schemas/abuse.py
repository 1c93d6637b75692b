"""Schemas of the abuse desk: complaints, cases, sanctions, rejected input, incidents."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ipam.models import (
    AbuseCategory,
    CaseState,
    CustomerAnswer,
    Holding,
    IncidentState,
    RejectedStatus,
    SanctionKind,
    SanctionStatus,
)

from .common import (
    Count,
    Id,
    In,
    Instant,
    ListQuery,
    Out,
    Query,
    Ref,
    ShortText,
    Text,
    TriState,
)

FORMATS = Literal["arf", "xarf-mail", "xarf-json", "csv", "shadowserver", "drop"]


class ComplaintIn(In):
    """Our own complaint object (XARF v4 JSON is told apart by its "Report" key)."""

    address: ShortText = Field(description="an address or prefix")
    time: ShortText = Field(description="ISO 8601 with an offset")
    category: ShortText | None = Field(None, description="clauses 7-14, or other")
    description: Text | None = None
    reporter: ShortText | None = None


class StoredReport(Out):
    id: int
    prefix: str
    event_at: str
    category: AbuseCategory
    holding: Holding


class RejectedBrief(Out):
    id: int | None
    field: str | None
    reason: str


class IntakeOut(Out):
    reports: list[StoredReport]
    duplicates: int
    cases_opened: int
    rejected: list[RejectedBrief]


class CaseQuery(ListQuery):
    state: CaseState | None = None


class CaseOut(Out):
    id: int
    state: CaseState
    customer_status: CustomerAnswer
    category: AbuseCategory
    prefix: str
    customer_id: int | None
    sublessee_id: int | None
    report_count: int
    first_event_at: Instant
    last_event_at: Instant
    deadline: Instant | None
    owner: str | None = None


class ReportOut(Out):
    id: int
    source: str
    prefix: str
    event_at: Instant
    received_at: Instant
    category: AbuseCategory
    reporter: str | None
    description: str | None
    holding: Holding
    sha256: str


class CaseEventOut(Out):
    at: Instant
    actor: str
    action: str
    from_: CaseState | None = Field(alias="from")
    to: CaseState | None
    comment: str | None


class SanctionOut(Out):
    id: int
    customer_id: int
    case_id: int | None
    kind: SanctionKind
    status: SanctionStatus
    reason: str
    evidence: Any
    proposed_by: str
    proposed_at: Instant
    confirmed_by: str | None
    confirmed_at: Instant | None


class CaseDetail(CaseOut):
    reports: list[ReportOut]
    events: list[CaseEventOut]
    sanctions: list[SanctionOut]


class TransitionIn(In):
    action: Literal["notify", "acknowledge", "resolve", "escalate"]
    comment: Text | None = None


class NotifyIn(In):
    with_sublessee: bool = False
    template: ShortText | None = Field(
        None, description="a reply template; default: the category's"
    )
    note: ShortText | None = Field(None, description="the engineer's words, added to the notice")


class OwnerIn(In):
    owner: ShortText | None = Field(None, description="a staff username; null: nobody")


class AnswerIn(In):
    status: Literal["acknowledged", "answered", "disputed"]
    answer: Text | None = None


class SanctionIn(In):
    reason: Text | None = None


class UnattributedQuery(ListQuery):
    holding: Literal["unallocated", "quarantined"] | None = Field(
        None, description="one kind of unheld space (default: both)"
    )


class RejectedQuery(ListQuery):
    status: Literal["rejected", "accepted", "all"] = "rejected"
    field: Literal["domain"] | None = Field(
        None, description="domain: complaints naming a URL or domain nobody registered"
    )


class RejectedOut(Out):
    id: int
    source: str
    field: str | None
    reason: str
    received_at: Instant
    status: RejectedStatus
    report_id: int | None
    sha256: str
    bytes: int = Field(description="the input's size")

    @model_validator(mode="before")
    @classmethod
    def _size(cls, obj):
        if hasattr(obj, "raw"):  # the stored row: its size, not its bytes
            names = [name for name in cls.model_fields if name != "bytes"]
            return {**{name: getattr(obj, name) for name in names}, "bytes": len(obj.raw)}
        return obj


class RetryIn(In):
    format: FORMATS | None = Field(None, description="default: detected")


class RetryOut(Out):
    stored: int
    duplicates: int
    rejected: list[RejectedBrief]


# incidents (clause 16) ---------------------------------------------------------------
class IncidentQuery(ListQuery):
    state: Literal["open", "reported", "closed"] | None = None


class IncidentIn(In):
    title: ShortText
    category: ShortText
    hours: int = Field(24, ge=-(2**31), le=2**31, description="the reporting clock, 2-24")
    description: Text = ""
    case: Ref | None = Field(None, description="declared from this case")
    report_ids: list[Id] = Field([], max_length=10_000)


class ActionIn(In):
    kind: Literal["measure", "note"]
    text: Text


class FreezeIn(In):
    report_ids: list[Id] = Field(min_length=1, max_length=10_000)


class ReportedIn(In):
    reported_to: Text
    text: Text


class CloseIn(In):
    text: Text | None = None


class IncidentOut(Out):
    id: int
    title: str
    category: AbuseCategory
    state: IncidentState
    case_id: int | None
    customer_id: int | None
    declared_at: Instant
    declared_by: str
    deadline: Instant
    reported_at: Instant | None
    reported_to: str | None
    closed_at: Instant | None
    reminders_sent: Any


class IncidentActionOut(Out):
    at: Instant
    actor: str
    kind: str
    text: str


class EvidenceOut(Out):
    id: int
    report_id: int | None
    source: str
    sha256: str
    bytes: Count
    event_at: Instant | None
    frozen_at: Instant
    frozen_by: str


class IncidentDetail(IncidentOut):
    description: str | None
    actions: list[IncidentActionOut]
    evidence: list[EvidenceOut]


class ExportQuery(Query):
    format: Literal["json", "text"] = "json"
    lang: Literal["zh", "en"] = Field("zh", description="the text report's language")
    reveal: TriState = Field(False, description="holders' ID numbers and phones in full (audited)")
    reason: Text | None = Field(None, description="required with reveal: why (case, request)")
