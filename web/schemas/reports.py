"""Reports, issued files, certificates and sites in the JSON API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import Id, In, Instant, Out, Query, Ref, ShortText, Text, TriState


class ReportColumnOut(Out):
    key: str
    zh: str
    en: str
    kind: str


class ReportKindOut(Out):
    name: str
    zh: str
    en: str
    uses: list[str]
    columns: list[ReportColumnOut]


class ReportQuery(Query):
    format: Literal["json", "csv", "xlsx", "pdf"] = "json"
    lang: Literal["zh", "en"] = "zh"
    from_: ShortText | None = Field(None, alias="from", description="a date or a local time")
    to: ShortText | None = Field(None, description="a date (included) or a local time")
    at: ShortText | None = Field(None, description="the instant (default now)")
    customer: Ref | None = None
    pool: Ref | None = None
    deadline: int | None = Field(None, ge=1, le=365, description="days to file a change")
    actor: ShortText | None = None
    object: ShortText | None = None
    action: ShortText | None = None
    limit: int = Field(1000, ge=1, le=10000, description="rows in a JSON answer")


class ReportRowsOut(Out):
    report: str
    title: str
    params: dict[str, Any]
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


class IssueIn(In):
    format: Literal["csv", "xlsx", "pdf"] = "pdf"
    lang: Literal["zh", "en"] = "zh"
    from_: ShortText | None = Field(None, alias="from")
    to: ShortText | None = None
    at: ShortText | None = None
    customer: Ref | None = None
    pool: Ref | None = None
    deadline: int | None = Field(None, ge=1, le=365)
    actor: ShortText | None = None
    object: ShortText | None = None
    action: ShortText | None = None
    reveal: TriState = False
    reason: Text | None = None


class IssuedOut(Out):
    id: int
    name: str
    params: dict[str, Any]
    format: str
    language: str
    file_name: str
    size: int
    rows: int
    sha256: str
    customer_id: int | None
    issued_by: str
    issued_at: Instant
    anchor_seq: int
    anchor_hash: str


class IssuedQuery(Query):
    name: ShortText | None = None
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=2**31 - 1)


class CertificateIn(In):
    address: ShortText
    at: ShortText | None = Field(None, description="ISO 8601 with an offset; default now")
    lang: Literal["zh", "en"] = "zh"
    reveal: TriState = False
    reason: Text | None = None


class CertificateOut(Out):
    json_file: IssuedOut
    pdf_file: IssuedOut
    certificate: dict[str, Any]


class VerifyOut(Out):
    ok: bool
    problems: list[str]
    checks: list[str]
    serial: int | None = None


class SiteIn(In):
    customer: Ref
    sublessee_id: Id | None = None
    name: ShortText
    domain: ShortText
    urls: list[ShortText] = Field(default_factory=list, max_length=50)
    icp_number: ShortText | None = None
    category: ShortText = "general"
    approval_ref: ShortText | None = None
    interactive: ShortText | None = None
    admin_accounts: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    addresses: list[ShortText] = Field(max_length=64)


class SiteUpdate(In):
    name: ShortText | None = None
    domain: ShortText | None = None
    urls: list[ShortText] | None = Field(None, max_length=50)
    icp_number: ShortText | None = None
    category: ShortText | None = None
    approval_ref: ShortText | None = None
    interactive: ShortText | None = None
    admin_accounts: list[dict[str, Any]] | None = Field(None, max_length=50)
    addresses: list[ShortText] | None = Field(None, max_length=64)


class SiteClose(In):
    reason: Text


class SiteOut(Out):
    id: int
    customer_id: int
    sublessee_id: int | None
    name: str
    domain: str
    urls: list[str]
    icp_number: str | None
    category: str
    approval_ref: str | None
    interactive: str | None
    admin_accounts: list[dict[str, Any]]
    addresses: list[str]
    valid_from: Instant
    valid_to: Instant | None


class SiteQuery(Query):
    customer: Ref | None = None
    all: TriState = False


class SearchQuery(Query):
    q: ShortText


class HitOut(Out):
    kind: str
    key: str
    title: str
    detail: str
    customer_id: int | None
    state: str
