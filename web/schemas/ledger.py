"""Schemas of the core ledger: pools, customers, allocations, leasing, change requests.

Types and bounds are checked here; what only the ledger can know (a USCC's
check digit, a free block, a phone number's shape) is checked by ipam/.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from ipam.models import ChangeStatus, CustomerKind, CustomerStatus, IdType, SublesseeKind
from ipam.privacy import masked

from .common import (
    Day,
    Id,
    In,
    Instant,
    JsonObject,
    ListQuery,
    Masked,
    MaskedId,
    MaskedPeople,
    Out,
    People,
    Query,
    Ref,
    ShortText,
    Text,
    TriState,
)

QuarantineDays = Field(None, ge=0, le=3650, description="cool-down; default the setting")


# pools ---------------------------------------------------------------------------
class PoolQuery(ListQuery):
    family: Literal["4", "6"] | None = None


class PoolIn(In):
    prefix: ShortText = Field(description="CIDR")
    name: ShortText
    parent: Ref | None = Field(None, description="pool name, id or prefix; found if omitted")
    description: Text = ""


class Utilization(Out):
    size: int
    allocated: int
    quarantined: int
    child_pools: int
    free: int
    used_ratio: float

    @field_validator("used_ratio")
    @classmethod
    def _round(cls, value: float) -> float:
        return round(value, 6)


class PoolOut(Out):
    id: int
    name: str
    prefix: str
    family: Literal[4, 6]
    parent_id: int | None
    description: str
    utilization: Utilization | None = None


class MapQuery(Query):
    prefix: ShortText = ""


class MapCell(Out):
    prefix: str
    state: str
    allocated: int
    subleased: int
    quarantined: int


class MapOut(Out):
    prefix: str
    cell_prefixlen: int
    totals: dict[str, int]
    cells: list[MapCell]


# customers -------------------------------------------------------------------------
class CustomerQuery(ListQuery):
    status: CustomerStatus | None = None
    q: ShortText | None = Field(None, description="part of the name")


class CustomerFields(In):
    name: ShortText | None = None
    kind: CustomerKind | None = None
    isp_licence_number: ShortText | None = None
    isp_licence_scope: Text | None = None
    isp_licence_expires: date | None = None
    icp_number: ShortText | None = None
    connected_on: date | None = None
    psb_filing_number: ShortText | None = None
    psb_filed_on: date | None = None
    responsible_persons: People | None = None
    contacts: People | None = None
    domains: list[ShortText] | ShortText | None = None


class CustomerIn(CustomerFields):
    name: ShortText
    uscc: ShortText = Field(description="unified social credit code")
    kind: CustomerKind


class CustomerPatch(CustomerFields):
    """Any registration field but uscc and status (those change by their own actions)."""


class CustomerOut(Out):
    id: int
    name: str
    uscc: str
    kind: CustomerKind
    status: CustomerStatus
    isp_licence_number: str | None
    isp_licence_scope: str | None
    isp_licence_expires: Day | None
    icp_number: str | None
    connected_on: Day | None
    psb_filing_number: str | None
    psb_filed_on: Day | None
    responsible_persons: MaskedPeople
    contacts: MaskedPeople
    domains: list[str] = []
    created_at: Instant
    updated_at: Instant | None
    exited_at: Instant | None

    @field_validator("domains", mode="before")
    @classmethod
    def _none_is_empty(cls, value):
        return value or []


class ExitIn(In):
    note: Text | None = None
    quarantine_days: int | None = QuarantineDays


class ReclaimIn(In):
    reason: Text = Field(description="the violation")
    allocations: list[Ref] | None = Field(None, max_length=10_000, description="default all")
    quarantine_days: int | None = QuarantineDays


# allocations -------------------------------------------------------------------------
class AllocationQuery(ListQuery):
    customer: ShortText | None = Field(None, description="customer id, code or name")
    pool: ShortText | None = Field(None, description="pool id, name or prefix")
    current: TriState = Field(True, description="true (default), false or all")
    contains: ShortText | None = Field(None, description="an address")


class AllocationIn(In):
    pool: Ref
    customer: Ref
    prefix: ShortText | None = Field(None, description="the exact block")
    prefixlen: int | None = Field(None, ge=0, le=128, description="the next free block of this")
    purpose: Text = ""


class EndIn(In):
    note: Text | None = None
    quarantine_days: int | None = QuarantineDays


class Interval(Out):
    valid_from: Instant
    valid_to: Instant | None
    end_reason: str | None
    end_note: str | None


class AllocationOut(Interval):
    id: int
    prefix: str
    pool_id: int
    customer_id: int
    purpose: str


class EndedOut(Out):
    ended: list[AllocationOut]


# sublessees and subleases ---------------------------------------------------------------
class SublesseeQuery(ListQuery):
    customer: ShortText | None = None


class SublesseeFields(In):
    kind: SublesseeKind | None = None
    name: ShortText | None = None
    id_type: IdType | None = None
    id_number: ShortText | None = None
    contact_person: ShortText | None = None
    phone: ShortText | None = None
    email: ShortText | None = None
    address: Text | None = None
    purpose: Text | None = None
    domains: list[ShortText] | ShortText | None = None


class SublesseeIn(SublesseeFields):
    customer: Ref | None = Field(None, description="staff only: whose sublessee")
    kind: SublesseeKind
    name: ShortText
    id_type: IdType
    id_number: ShortText
    contact_person: ShortText
    phone: ShortText
    email: ShortText
    address: Text
    purpose: Text


class SublesseePatch(SublesseeFields):
    """Any sublessee field."""


class SublesseeOut(Out):
    id: int
    customer_id: int
    kind: SublesseeKind
    name: str
    id_type: IdType
    id_number: MaskedId
    contact_person: str
    phone: Masked
    email: str
    address: str
    purpose: str
    domains: list[str] | None
    created_at: Instant
    updated_at: Instant | None


class SubleaseQuery(ListQuery):
    customer: ShortText | None = None
    sublessee: ShortText | None = None
    current: TriState = Field(True, description="true (default), false or all")


class SubleaseIn(In):
    allocation: Ref
    sublessee: Ref
    prefix: ShortText | None = None
    prefixlen: int | None = Field(None, ge=0, le=128)


class NoteIn(In):
    note: Text | None = None


class SubleaseOut(Interval):
    id: int
    prefix: str
    allocation_id: int
    sublessee_id: int


# change requests (clause 18) ----------------------------------------------------------
class ChangeRequestQuery(ListQuery):
    customer: ShortText | None = None
    status: ChangeStatus | None = None


class ChangeRequestIn(In):
    target: ShortText = Field(description="customer | allocation | site")
    changes: JsonObject
    reason: Text
    target_id: Id | None = None


class CommentIn(In):
    comment: Text | None = None


class ChangeRequestOut(Out):
    id: int
    customer_id: int
    target: str
    target_id: int | None
    changes: Annotated[dict[str, Any], BeforeValidator(masked)]
    reason: str
    status: ChangeStatus
    submitted_by: str
    submitted_at: Instant
    decided_by: str | None
    decided_at: Instant | None
    comment: str | None


# quarantine -------------------------------------------------------------------------------
class ReleaseIn(In):
    reason: Text | None = Field(None, description="why before its time")


class QuarantineOut(Out):
    id: int
    prefix: str
    pool_id: int
    allocation_id: int | None
    since: Instant
    until: Instant
    reason: str
    released_at: Instant | None


class QuarantineList(Out):
    items: list[QuarantineOut]


class ReleasedOut(Out):
    released: list[QuarantineOut]


# attribution ------------------------------------------------------------------------------
class AttributionQuery(Query):
    address: ShortText
    at: ShortText | None = Field(None, description="ISO 8601 with an offset; default now")
    reveal: TriState = Field(False, description="show personal data in full (audited)")
    reason: Text | None = Field(None, description="required with reveal")


class AttributionOut(Out):
    address: str
    at: str
    status: str
    pool: dict[str, Any] | None
    allocation: dict[str, Any] | None
    customer: dict[str, Any] | None
    sublease: dict[str, Any] | None
    sublessee: dict[str, Any] | None
    quarantine: dict[str, Any] | None
    notes: list[str]
