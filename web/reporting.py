"""Reports and certificates as the caller may have them: one path for the API and the UI.

Drafts (GET) are streamed and kept nowhere; issuing (POST) keeps the bytes and
audits them (ipam/reports/issued.py). Customer users get the reports of their
own space and certificates for their own addresses only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping

from flask import Response, current_app, send_file, stream_with_context

from ipam import certificates, reports
from ipam.db import reading
from ipam.models import IssuedReport
from ipam.reports import files, issued

from . import replica
from .access import actor, scope
from .extensions import db
from .usecase import run

PREVIEW_ROWS = 200


def _zone() -> str:
    return current_app.config["IPAM_TIMEZONE"]


def prepare(name, args: Mapping, *, reveal: bool = False):
    """(report, params) from a query string or a form; bad input names its field."""
    return reports.prepare(
        db.session,
        name,
        scope(),
        zone=_zone(),
        start=args.get("from") or args.get("from_"),
        end=args.get("to"),
        at=args.get("at"),
        customer=args.get("customer"),
        pool=args.get("pool"),
        deadline_days=args.get("deadline"),
        actor=args.get("actor"),
        object_type=args.get("object"),
        action=args.get("action"),
        reveal=reveal,
    )


def preview(report, params, limit: int = PREVIEW_ROWS) -> tuple[list, bool]:
    """The first `limit` rows and whether there are more."""
    out = []
    for row in reports.rows(replica.session(own_write=params.reveal), report, params, scope()):
        if len(out) == limit:
            return out, True
        out.append(row)
    return out, False


def _disposition(name: str) -> dict:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def draft(report, params, fmt: str, lang: str) -> Response:
    """The report as a file, made now and kept nowhere (marked as a draft inside)."""
    fmt = files.check_format(fmt)
    stamp = f"{report.name}-draft.{fmt}"
    reads = replica.session(own_write=params.reveal)  # revealing writes an audit entry
    if fmt == "csv":
        chunks = files.csv_chunks(
            report, params, reports.rows(reads, report, params, scope()), lang
        )
        return Response(
            stream_with_context(chunks), mimetype="text/csv", headers=_disposition(stamp)
        )
    buf = tempfile.SpooledTemporaryFile(max_size=issued.SPOOL)
    issued.export(reads, report, params, fmt, lang, buf, scope=scope(), actor=actor())
    buf.seek(0)
    return send_file(buf, mimetype=files.MEDIA[fmt], as_attachment=True, download_name=stamp)


def issue(name, args: Mapping, fmt, lang: str, *, reveal: bool, reason) -> IssuedReport:
    """Issue (keep and audit) the report; personal data in full only with a reason.

    The file is made in a read transaction (a long report holds no write lock on SQLite),
    then kept in a short write one."""
    report, params = prepare(name, args, reveal=reveal)
    who, whose = actor(), scope()
    db.session.commit()  # ends the request's first transaction (the login check's reads)
    reads = replica.session(own_write=params.reveal)
    with reading(reads) as s:
        try:
            made = issued.make(
                s, report.name, params, fmt, lang, actor=who, scope=whose, reason=reason
            )
        finally:
            s.rollback()  # reads only: nothing to keep
    return run(lambda s: issued.keep(s, made, actor=who))


def issued_file(record_id: int) -> Response:
    """An issued file, byte for byte as it went out, with its SHA-256 in a header."""
    record = issued.get_issued(db.session, record_id, scope())
    fmt = record.format
    response = Response(
        bytes(record.content), mimetype=files.MEDIA.get(fmt, "application/octet-stream")
    )
    response.headers.update(_disposition(record.file_name))
    response.headers["X-Content-SHA256"] = record.sha256
    return response


def keyring() -> certificates.Keyring:
    return certificates.Keyring.from_config(current_app.config)


def certify(address, at, lang: str, *, reveal: bool, reason):
    """Issue a certificate (JSON, signed) and its PDF; customers: their own addresses only."""

    def change(s):
        record, _content = certificates.issue(
            s,
            address,
            at,
            actor=actor(),
            keyring=keyring(),
            issuer=current_app.config["IPAM_PROVIDER_NAME"],
            scope=scope(),
            reason=reason if reveal else None,
        )
        pdf = certificates.render_pdf(s, record, actor=actor(), lang=lang)
        return record, pdf

    return run(change)


def verify_upload(data: bytes) -> certificates.Verdict:
    return certificates.verify(data, keyring(), session=db.session)
