"""The reports regulators ask for: one module each, one registry, the same rows everywhere.

`REPORTS[name]` is a Report (base.py); `prepare` checks what was asked against
the ledger and the caller's scope; `rows` streams the answer. Files are made
by files.py and kept, once issued, by issued.py.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import NotFound, ValidationError
from ..listing import Scope
from . import abuse, audit_log, clause6, compliance, ip_filing, reclamation, sublessees
from .base import LANGUAGES, Params, Report, parse_params

REPORTS: dict[str, Report] = {
    r.name: r
    for r in (
        ip_filing.REPORT,
        ip_filing.CHANGES,
        clause6.REPORT,
        sublessees.REPORT,
        compliance.REPORT,
        reclamation.REPORT,
        abuse.REPORT,
        audit_log.REPORT,
    )
}


def get_report(name) -> Report:
    report = REPORTS.get(str(name or "").strip())
    if report is None:
        raise NotFound(
            "no report {name!r}; the reports are: {choices}",
            "report",
            name=name,
            choices=", ".join(REPORTS),
        )
    return report


def language(value) -> str:
    lang = str(value or "zh").strip().lower().replace("_", "-").split("-")[0]
    if lang not in LANGUAGES:
        raise ValidationError("{value!r} is not one of: zh, en", "lang", value=value)
    return lang


def visible(scope: Scope) -> list[Report]:
    """The reports the caller may pull: customers only those of their own space."""
    return [r for r in REPORTS.values() if scope.customer_id is None or r.customers_may]


def prepare(session: Session, name, scope: Scope, *, zone: str, **asked) -> tuple[Report, Params]:
    """The report and its parameters, checked (bad input names its field and changes nothing).

    `asked`: start, end, at, customer, pool, reveal, deadline_days, actor, object_type,
    action, as a person typed them."""
    report = get_report(name)
    if scope.customer_id is not None and not report.customers_may:
        raise NotFound("no report {name!r}", "report", name=name)
    if scope.customer_id is not None and asked.get("reveal"):
        raise ValidationError("customer users cannot reveal personal data", "reveal")
    customer_id = _customer(session, asked.pop("customer", None))
    if scope.customer_id is not None:
        if customer_id not in (None, scope.customer_id):
            raise NotFound("no customer {customer_id!r}", "customer", customer_id=customer_id)
        customer_id = scope.customer_id
    pool_id = _pool(session, asked.pop("pool", None))
    params = parse_params(zone=zone, customer_id=customer_id, pool_id=pool_id, **asked)
    params = report.defaults(params, utcnow())
    if "at" not in report.uses and params.at is not None:
        params = replace(params, at=None)
    return report, params


def _customer(session: Session, ref) -> int | None:
    if ref in (None, ""):
        return None
    from ..customers import get_customer

    return get_customer(session, ref, "customer").id


def _pool(session: Session, ref) -> int | None:
    if ref in (None, ""):
        return None
    from ..pools import get_pool

    return get_pool(session, ref, "pool").id


def rows(session: Session, report: Report, params: Params, scope: Scope):
    """The report's rows (tuples in column order), streamed."""
    return report.rows(session, params, scope)
