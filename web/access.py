"""Who may call what, and on whose objects: enforced here, once, for every request.

Every endpoint must have a rule in RULES, declared with its route (the app
refuses to start otherwise).
Auditors are refused every write method. For customer users, every object id
in the URL must belong to their customer, and `load` applies the same check to
ids named in a request body; another customer's object answers 404, the same
as one that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

from flask import Flask, abort, g, request
from flask_login import current_user
from sqlalchemy import select

from ipam import allocation, change_requests, customers, leasing, users
from ipam.errors import NotFound, Phrase
from ipam.listing import Scope
from ipam.models import (
    AbuseCase,
    Allocation,
    ApiToken,
    ChangeRequest,
    IssuedReport,
    Role,
    Site,
    Sublease,
    Sublessee,
)

from .extensions import db
from .webstack import csrf, login_manager

ADMIN, ENGINEER, CUSTOMER, AUDITOR = Role.ADMIN, Role.ENGINEER, Role.CUSTOMER, Role.AUDITOR
PUBLIC = None  # no login needed
ANY = frozenset(Role)
STAFF = frozenset({ADMIN, ENGINEER})
READERS = frozenset({ADMIN, ENGINEER, AUDITOR})
OWN = frozenset({ADMIN, ENGINEER, AUDITOR, CUSTOMER})  # customers: their own objects only
OWN_WRITE = frozenset({ADMIN, ENGINEER, CUSTOMER})  # writes customers make on their own objects
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Endpoint -> the roles that may use it (PUBLIC: anyone). The UI's and the API's routes
# declare theirs where they are defined (web/ui/helpers.py `view`, web/api/endpoint.py
# `endpoint`); these are the routes that come from elsewhere.
RULES: dict[str, frozenset | None] = {
    "static": PUBLIC,
    "auth.login": PUBLIC,
    "auth.logout": ANY,
}

# Posts that change no ledger data (the caller's own login; issuing a report or a certificate
# only records what was handed out, checking a certificate records nothing), allowed to auditors.
NOT_WRITES = frozenset(
    {
        "auth.logout",
        "ui.account",
        "api.report_issue",
        "api.certificate_issue",
        "api.certificate_verify",
        "ui.report_issue",
        "ui.certificate_issue",
        "ui.certificate_verify",
    }
)


def _owner(model, column):
    def find(object_id: int) -> int | None:
        return db.session.execute(select(column).where(model.id == object_id)).scalar()

    return find


# URL parameter -> the customer that owns the object it names.
OWNER_OF = {
    "customer_id": lambda i: i,
    "allocation_id": _owner(Allocation, Allocation.customer_id),
    "sublessee_id": _owner(Sublessee, Sublessee.customer_id),
    "sublease_id": lambda i: db.session.execute(
        select(Allocation.customer_id)
        .join(Sublease, Sublease.allocation_id == Allocation.id)
        .where(Sublease.id == i)
    ).scalar(),
    "request_id": _owner(ChangeRequest, ChangeRequest.customer_id),
    "case_id": _owner(AbuseCase, AbuseCase.customer_id),
    "site_id": _owner(Site, Site.customer_id),
    "issued_id": _owner(IssuedReport, IssuedReport.customer_id),
}


def actor() -> str:
    """The audit log's name for whoever makes this request."""
    return f"user:{current_user.username}" if current_user.is_authenticated else "anonymous"


def customer_scope() -> int | None:
    """The customer a customer user is bound to; None for provider roles (they see all)."""
    if current_user.is_authenticated and current_user.role == CUSTOMER:
        return current_user.customer_id
    return None


def scope() -> Scope:
    """The caller's scope for ipam's list functions (ipam/listing.py)."""
    return Scope(customer_scope())


def _refuse_foreign(owner_id: int | None, what: str, ref) -> None:
    scope = customer_scope()
    if owner_id is None or (scope is not None and owner_id != scope):
        raise NotFound("no {what} {ref!r}", what, what=Phrase(what), ref=ref)


def load(kind: str, ref, field: str | None = None):
    """Resolve a reference from a request body and apply the customer scope to it."""
    field = field or kind
    if kind == "customer":
        obj = customers.get_customer(db.session, ref, field)
        _refuse_foreign(obj.id, field, ref)
    elif kind == "allocation":
        obj = allocation.get_allocation(db.session, ref, field)
        _refuse_foreign(obj.customer_id, field, ref)
    elif kind == "sublessee":
        obj = leasing.get_sublessee(db.session, ref, field)
        _refuse_foreign(obj.customer_id, field, ref)
    elif kind == "change_request":
        obj = change_requests.get_request(db.session, ref, field)
        _refuse_foreign(obj.customer_id, field, ref)
    else:  # pragma: no cover - a programming error
        raise KeyError(kind)
    return obj


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _is_api() -> bool:
    return (request.blueprint or "") == "api"


def check_request():
    """The before_request hook: authenticate, check the rule, scope the URL's ids."""
    endpoint = request.endpoint
    if endpoint is None:  # 404 / 405: let Flask answer
        return None
    rule = RULES[endpoint]
    token = _bearer() if _is_api() else None
    if token is not None:
        user = users.user_for_token(db.session, token)
        if user is None:
            abort(
                401, description=Phrase("the API token is unknown, revoked or its user is disabled")
            )
        g._login_user = user  # Flask-Login's per-request user; no session cookie is set
    elif _is_api() and request.method not in SAFE_METHODS and current_user.is_authenticated:
        csrf.protect()  # a browser session calling the API must prove the page is ours
    if rule is PUBLIC:
        return None
    if not current_user.is_authenticated:
        if _is_api():
            abort(401, description=Phrase("log in or send an API token (Authorization: Bearer …)"))
        return login_manager.unauthorized()
    role = current_user.role
    if role == AUDITOR and request.method not in SAFE_METHODS and endpoint not in NOT_WRITES:
        abort(403, description=Phrase("auditors have read-only access"))
    if role not in rule:
        abort(403, description=Phrase("the {role} role may not use this", role=role))
    _check_view_args()
    return None


def _check_view_args() -> None:
    args = request.view_args or {}
    if "token_id" in args and current_user.role != ADMIN:
        owner = db.session.execute(
            select(ApiToken.user_id).where(ApiToken.id == args["token_id"])
        ).scalar()
        if owner != current_user.id:
            raise NotFound("no token {token_id!r}", "token", token_id=args["token_id"])
    if customer_scope() is None:
        return
    for name, value in args.items():
        find = OWNER_OF.get(name)
        if find is not None:
            _refuse_foreign(find(value), name.removesuffix("_id"), value)


@login_manager.user_loader
def _load_user(session_id: str):
    """The session's user, if its key is still the user's (logout, a new password or a
    disable replace it, ending every older session)."""
    return users.session_user(db.session, session_id)


def init_app(app: Flask) -> None:
    from .api import api

    csrf.exempt(api)  # API writes are checked in check_request: tokens need no CSRF token
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    app.before_request(check_request)
    missing = [rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint not in RULES]
    if missing:
        raise RuntimeError(f"endpoints without an access rule: {', '.join(sorted(missing))}")
