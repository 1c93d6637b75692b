"""Reports, issued files, signed certificates and the sites register in the JSON API."""

from __future__ import annotations

from datetime import datetime

import pydantic
from flask import current_app, request

from ipam import search, sites
from ipam.errors import ValidationError
from ipam.listing import Window
from ipam.reports import files, issued, visible

from .. import reporting
from ..access import OWN, OWN_WRITE, READERS, STAFF, actor, load, scope
from ..extensions import db
from ..schemas.common import Page
from ..schemas.jobs import JobOut
from ..schemas.reports import (
    CertificateIn,
    CertificateOut,
    HitOut,
    IssuedOut,
    IssuedQuery,
    IssueIn,
    ReportKindOut,
    ReportQuery,
    ReportRowsOut,
    SearchQuery,
    SiteClose,
    SiteIn,
    SiteOut,
    SiteQuery,
    SiteUpdate,
    VerifyOut,
)
from ..usecase import run
from .endpoint import endpoint, parse_body
from .helpers import scoped_customer
from .jobs import accept, wants_async
from .leasing import NamedCustomer

FILES = {
    "text/csv": "?format=csv: UTF-8 with BOM",
    files.MEDIA["xlsx"]: "?format=xlsx",
    "application/pdf": "?format=pdf, the Chinese font embedded",
}


def _report_out(r) -> dict:
    return {
        "name": r.name,
        "zh": r.zh,
        "en": r.en,
        "uses": sorted(r.uses),
        "columns": [vars(c) for c in r.columns],
    }


@endpoint("GET", "/reports", access=OWN, out=list[ReportKindOut])
def reports_list():
    """The reports the caller may pull (customers: those of their own space)"""
    return [_report_out(r) for r in visible(scope())]


def _cell(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, int) and value >= 2**53:
        return str(value)
    return value


@endpoint(
    "GET", "/reports/<name>", access=OWN, query=ReportQuery, out=ReportRowsOut, produces=FILES
)
def report_get(name, query: ReportQuery):
    """A report's rows (JSON, at most ?limit=) or a draft file (?format=csv|xlsx|pdf), not kept"""
    args = query.model_dump(by_alias=True)
    report, params = reporting.prepare(name, args)
    if query.format != "json":
        return reporting.draft(report, params, query.format, query.lang)
    rows, more = reporting.preview(report, params, query.limit)
    return {
        "report": report.name,
        "title": report.title(query.lang),
        "params": params.as_dict(),
        "columns": [c.key for c in report.columns],
        "rows": [[_cell(v) for v in row] for row in rows],
        "truncated": more,
    }


@endpoint(
    "POST", "/reports/<name>/issue", access=READERS, body=IssueIn, out=IssuedOut, status=201,
    answers={202: (JobOut, "with Prefer: respond-async: a job to poll, issued by a worker")},
)  # fmt: skip
def report_issue(name, body: IssueIn):
    """Issue a report: its bytes kept, their SHA-256 in the audit chain (auditors may)

    A report over a million allocations takes a while: send `Prefer: respond-async` to
    get 202 and a job (GET /jobs/N) instead of waiting; the job names the issued report.
    """
    args = body.model_dump(by_alias=True)
    if wants_async():
        reporting.prepare(name, args, reveal=bool(body.reveal))  # bad input: 422 now
        job_args = {
            "name": name, "args": body.model_dump(by_alias=True, mode="json"),
            "format": body.format, "lang": body.lang, "actor": actor(),
            "customer_id": scope().customer_id, "reveal": bool(body.reveal),
            "reason": body.reason, "zone": current_app.config["IPAM_TIMEZONE"],
        }  # fmt: skip
        return accept("issue_report", run_by=actor(), args=job_args)
    return reporting.issue(
        name, args, body.format, body.lang, reveal=bool(body.reveal), reason=body.reason
    )


@endpoint("GET", "/issued", access=OWN, query=IssuedQuery, out=Page[IssuedOut])
def issued_list(query: IssuedQuery):
    """Issued reports and certificates, newest first (customers: their own)"""
    rows, total = issued.list_issued(
        db.session, scope(), Window(query.limit, query.offset), name=query.name
    )
    return {
        "items": rows,
        "total": total,
        "limit": query.limit,
        "offset": query.offset,
        "next": None,
    }


@endpoint(
    "GET",
    "/issued/<int:issued_id>",
    access=OWN,
    produces={**FILES, "application/json": "a certificate"},
)
def issued_get(issued_id):
    """An issued file, byte for byte as it went out (its SHA-256 in X-Content-SHA256)"""
    return reporting.issued_file(issued_id)


@endpoint("POST", "/certificates", access=OWN, body=CertificateIn, out=CertificateOut, status=201)
def certificate_issue(body: CertificateIn):
    """Sign who held an address at an instant (customers: their own addresses)"""
    record, pdf = reporting.certify(
        body.address, body.at, body.lang, reveal=bool(body.reveal), reason=body.reason
    )
    import json

    return {"json_file": record, "pdf_file": pdf, "certificate": json.loads(record.content)}


@endpoint(
    "POST",
    "/certificates/verify",
    access=OWN,
    out=VerifyOut,
    consumes={"application/octet-stream": "the certificate file, JSON or PDF"},
)
def certificate_verify():
    """Check a certificate file: form, signature, key, audit anchor, issued by this ledger"""
    data = request.get_data(cache=False)
    if not data:
        raise ValidationError("is required: send the certificate file as the body", "file")
    verdict = reporting.verify_upload(data)
    serial = (verdict.certificate or {}).get("serial")
    return {
        "ok": verdict.ok,
        "problems": verdict.problems,
        "checks": verdict.checks,
        "serial": serial if isinstance(serial, int) else None,
    }


@endpoint("GET", "/sites", access=OWN, query=SiteQuery, out=list[SiteOut])
def sites_list(query: SiteQuery):
    """The sites register (clauses 2, 3, 4, 6)"""
    customer_id = scoped_customer(query.customer)
    flt = sites.SiteFilter(customer_id=customer_id, current_only=not query.all)
    rows, _total = sites.list_sites(db.session, flt, scope())
    return rows


@endpoint("POST", "/sites", access=OWN_WRITE, body=SiteIn, out=SiteOut, status=201, parse=False)
def site_add():
    """Register a site of a customer or of its sublessee"""
    # Another customer's id answers 404 before any field is judged, as for every object.
    try:
        named = NamedCustomer.model_validate_json(request.get_data(cache=True) or b"{}")
    except pydantic.ValidationError:
        named = None
    if named is not None and named.customer is not None:
        scoped_customer(named.customer)
    body = parse_body(SiteIn)
    customer = load("customer", body.customer)
    data = body.model_dump(exclude={"customer"})
    return run(lambda s: sites.add_site(s, customer, data, actor=actor()))


@endpoint("PATCH", "/sites/<int:site_id>", access=STAFF, body=SiteUpdate, out=SiteOut)
def site_update(site_id, body: SiteUpdate):
    """Change a site's entry (its earlier entry stays answerable); customers ask for it with
    a change request (target "site", clause 18)"""
    changes = body.model_dump(exclude_unset=True)
    return run(lambda s: sites.update_site(s, site_id, changes, actor=actor()))


@endpoint("POST", "/sites/<int:site_id>/close", access=OWN_WRITE, body=SiteClose, out=SiteOut)
def site_close(site_id, body: SiteClose):
    """The site no longer runs"""
    return run(lambda s: sites.close_site(s, site_id, body.reason, actor=actor()))


@endpoint("GET", "/search", access=OWN, query=SearchQuery, out=list[HitOut])
def search_get(query: SearchQuery):
    """Everything a text can mean: address or prefix, customer, sublessee, site, case number"""
    return [vars(h) for h in search.search(db.session, query.q, scope())]
