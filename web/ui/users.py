"""API tokens, users (admin) and the account page."""

from __future__ import annotations

from flask import (
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from ipam import (
    customers,
    users,
)
from ipam.errors import IpamError
from ipam.models import (
    Role,
)

from ..access import (
    ADMIN,
    ANY,
    actor,
)
from ..extensions import db
from ..usecase import run
from .helpers import act, attempt, form_errors, view


def _tokens_page(secret: str | None = None, error: IpamError | None = None):
    return render_template(
        "tokens.html",
        tokens=users.tokens_of(db.session, current_user),
        secret=secret,
        errors=form_errors(error),
    ), (error.status if error else 200)


@view("/tokens", access=ANY)
def tokens():
    return _tokens_page()


@view("/tokens", methods=["POST"], access=ANY)
def token_issue():
    try:
        secret = run(
            lambda s: users.issue_token(
                s, current_user.id, request.form.get("name"), actor=actor()
            ),
            lambda pair: pair[1],
        )
    except IpamError as exc:
        return _tokens_page(error=exc)
    return _tokens_page(secret)


@view("/tokens/<int:token_id>/revoke", methods=["POST"], access=ANY)
def token_revoke(token_id):
    return act(
        lambda s: users.revoke_token(s, token_id, actor=actor()),
        _("Token revoked."),
        url_for("ui.tokens"),
    )


@view("/users", methods=["GET", "POST"], access=frozenset({ADMIN}))
def users_page():
    error = None
    if request.method == "POST":
        f = request.form
        response, error = attempt(
            lambda s: users.create_user(
                s,
                f.get("username"),
                f.get("password"),
                f.get("role"),
                customer=f.get("customer") or None,
                actor=actor(),
            ),
            _("User created."),
            url_for("ui.users_page"),
        )
        if response:
            return response
    all_customers = customers.list_customers(db.session, customers.CustomerFilter(order="name"))[0]
    return render_template(
        "users.html",
        users=users.list_users(db.session),
        roles=list(Role),
        customers=all_customers,
        errors=form_errors(error),
        form=request.form,
    ), (error.status if error else 200)


@view("/users/<int:user_id>", methods=["POST"], access=frozenset({ADMIN}))
def user_update(user_id):
    """Admin: disable or re-enable a login, or set a new password."""
    f = request.form

    def change(s):
        user = users.get_user(s, user_id)
        if f.get("password"):
            users.set_password(s, user, f.get("password"), actor=actor())
        if "active" in f:
            users.set_active(s, user, f.get("active") == "1", actor=actor())
        return user

    return act(change, _("User updated."), url_for("ui.users_page"))


@view("/account", methods=["GET", "POST"], access=ANY)
def account():
    """Change your own password."""
    error = None
    if request.method == "POST":
        f = request.form
        response, error = attempt(
            lambda s: users.change_own_password(
                s, current_user.id, f.get("current_password"), f.get("password"), actor=actor()
            ),
            _("Password changed."),
            url_for("ui.account"),
        )
        if response:
            return response
    return render_template("account.html", errors=form_errors(error)), (
        error.status if error else 200
    )
