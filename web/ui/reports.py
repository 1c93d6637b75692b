"""Reports, certificates and the sites register in the UI (clauses 2-6, 19; the auditor's desk)."""

from __future__ import annotations

import json

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ipam import customers, search, sites
from ipam.errors import IpamError, ValidationError
from ipam.listing import Window
from ipam.reports import files, issued, visible
from ipam.reports.base import term

from .. import reporting
from ..access import OWN, OWN_WRITE, READERS, actor, customer_scope, load, scope
from ..extensions import db
from ..messages import language, translate_error
from .helpers import act, attempt, form_errors, view


@view("/reports", access=OWN)
def reports_page():
    rows, total = issued.list_issued(db.session, scope(), Window(30, 0))
    return render_template(
        "reports.html", reports=visible(scope()), issued=rows, total=total, lang=language()
    )


@view("/reports/<name>", access=OWN)
def report_page(name):
    args = request.args
    lang = args.get("lang") or language()
    fmt = args.get("format")
    error = None
    report = params = None
    preview, more = [], False
    try:
        report, params = reporting.prepare(name, args)
        if fmt:
            return reporting.draft(report, params, fmt, lang)
        preview, more = reporting.preview(report, params)
    except IpamError as exc:
        error = exc
        if report is None and exc.field == "report":
            raise
    zone = files.ZoneInfo(params.zone) if params else None
    table = []
    if report is not None and params is not None:
        table = [
            [files.cell(c, v, lang, zone) for c, v in zip(report.columns, row, strict=True)]
            for row in preview
        ]
    from ipam.reports import get_report

    report = report or get_report(name)
    return render_template(
        "report.html",
        report=report,
        params=params,
        args=args,
        rows=table,
        more=more,
        headings=files.headings(report, lang, files.ZoneInfo(current_app.config["IPAM_TIMEZONE"])),
        errors=form_errors(error),
        lang=lang,
        customers=_customers(),
    ), (error.status if error else 200)


def _customers():
    if customer_scope() is not None:
        return []
    rows, _ = customers.list_customers(db.session, customers.CustomerFilter(order="name"))
    return rows


@view("/reports/<name>/issue", access=READERS, methods=("POST",))
def report_issue(name):
    form = request.form
    try:
        record = reporting.issue(
            name,
            form,
            form.get("format", "pdf"),
            form.get("lang") or language(),
            reveal=form.get("reveal") == "on",
            reason=form.get("reason"),
        )
    except IpamError as exc:
        flash(
            f"{exc.field}: {translate_error(exc)}" if exc.field else translate_error(exc), "error"
        )
        return redirect(url_for("ui.report_page", name=name, **_kept(form)))
    flash(_("Report %(id)s issued: %(file)s", id=record.id, file=record.file_name))
    return redirect(url_for("ui.reports_page", issued=record.id))


def _kept(form) -> dict:
    keys = ("from", "to", "at", "customer", "pool", "deadline", "actor", "object", "action")
    return {k: form[k] for k in keys if form.get(k)}


@view("/issued/<int:issued_id>", access=OWN)
def issued_download(issued_id):
    return reporting.issued_file(issued_id)


@view("/certificates", access=OWN)
def certificates_page():
    rows, total = issued.list_issued(db.session, scope(), Window(20, 0), name="certificate")
    return render_template(
        "certificates.html", issued=rows, form=request.args, errors={}, verdict=None
    )


@view("/certificates/issue", access=OWN, methods=("POST",))
def certificate_issue():
    form = request.form
    try:
        record, pdf = reporting.certify(
            form.get("address", ""),
            _instant(form.get("at")),
            form.get("lang") or language(),
            reveal=form.get("reveal") == "on",
            reason=form.get("reason"),
        )
    except IpamError as exc:
        rows, _total = issued.list_issued(db.session, scope(), Window(20, 0), name="certificate")
        return render_template(
            "certificates.html", issued=rows, form=form, errors=form_errors(exc), verdict=None
        ), exc.status
    flash(_("Certificate %(id)s issued", id=record.id))
    body = json.loads(record.content)
    status = term(body["certificate"]["answer"]["status"], language())
    return render_template(
        "certificate_issued.html", record=record, pdf=pdf, body=body["certificate"], status=status
    )


def _instant(value):
    from ipam.validation import local_instant

    return local_instant(value, "at", current_app.config["IPAM_TIMEZONE"])


@view("/certificates/verify", access=OWN, methods=("POST",))
def certificate_verify():
    upload = request.files.get("file")
    data = upload.read() if upload else b""
    rows, _total = issued.list_issued(db.session, scope(), Window(20, 0), name="certificate")
    if not data:
        errors = {"file": _("Choose the certificate file (JSON or PDF).")}
        return render_template(
            "certificates.html", issued=rows, form={}, errors=errors, verdict=None
        ), 422
    verdict = reporting.verify_upload(data)
    return render_template("certificates.html", issued=rows, form={}, errors={}, verdict=verdict), (
        200 if verdict.ok else 422
    )


@view("/sites", access=OWN)
def sites_page():
    ref = request.args.get("customer")
    customer_id = customer_scope()
    if customer_id is None and ref:
        customer_id = load("customer", ref).id
    rows, total = sites.list_sites(db.session, sites.SiteFilter(customer_id=customer_id), scope())
    return render_template("sites.html", sites=rows, total=total, customers=_customers())


def site_form(form) -> dict:
    data = {
        "name": form.get("name", ""),
        "domain": form.get("domain", ""),
        "urls": form.get("urls", ""),
        "icp_number": form.get("icp_number", ""),
        "category": form.get("category", "general"),
        "approval_ref": form.get("approval_ref", ""),
        "interactive": form.get("interactive", ""),
        "addresses": form.get("addresses", ""),
        "sublessee_id": form.get("sublessee_id", ""),
    }
    accounts = [a.strip() for a in form.get("admin_accounts", "").splitlines() if a.strip()]
    data["admin_accounts"] = [{"account": a} for a in accounts]
    return data


@view("/sites/new", access=OWN_WRITE, methods=("GET", "POST"))
def site_new():
    errors = {}
    if request.method == "POST":
        ref = request.form.get("customer") or customer_scope()
        if not ref:
            raise ValidationError("is required", "customer")
        customer = load("customer", ref)
        response, error = attempt(
            lambda s: sites.add_site(s, customer, site_form(request.form), actor=actor()),
            _("Site registered"),
            url_for("ui.sites_page", customer=customer.id),
        )
        if error is None:
            return response
        errors = form_errors(error)
    return render_template(
        "site_new.html",
        form=request.form,
        errors=errors,
        customers=_customers(),
        categories=sites.CATEGORIES,
        interactive=sites.INTERACTIVE,
    ), (422 if errors else 200)


@view("/sites/<int:site_id>/close", access=OWN_WRITE, methods=("POST",))
def site_close(site_id):
    return act(
        lambda s: sites.close_site(s, site_id, request.form.get("reason"), actor=actor()),
        _("Site closed"),
        url_for("ui.sites_page"),
    )


@view("/search", access=OWN)
def search_page():
    q = request.args.get("q", "")
    hits, error = [], None
    if q.strip():
        try:
            hits = search.search(db.session, q, scope())
        except IpamError as exc:
            error = exc
    lang = language()
    shown = [
        (
            h,
            term(h.state, lang),
            term(h.detail, lang) if h.kind in ("case", "incident") else h.detail,
        )
        for h in hits
    ]
    return render_template("search.html", q=q, hits=shown, errors=form_errors(error)), (
        error.status if error else 200
    )
