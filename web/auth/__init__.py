"""Logging in and out of the UI; API scripts use tokens instead (web/access.py)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_user, logout_user

from ipam import users
from ipam.db import transaction

from ..extensions import db
from ..security import safe_next
from ..webstack import limiter

auth = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would make the login page a phishing tool."""
    return safe_next(target, url_for("ui.dashboard"))


@auth.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["IPAM_LOGIN_LIMIT"], methods=["POST"])
@limiter.limit(
    lambda: current_app.config["IPAM_LOGIN_LIMIT"],
    methods=["POST"],
    key_func=lambda: "account:" + request.form.get("username", "").strip().lower()[:64],
)  # per account too: guessing one login from many addresses is capped as well
def login():
    error = None
    if request.method == "POST":
        name, password = request.form.get("username", ""), request.form.get("password", "")
        # One transaction: a password re-hashed at today's cost is kept.
        with transaction(db.session):
            user = users.authenticate(db.session, name, password)
        if user is not None:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        error = _("Wrong username or password.")
    return render_template("login.html", error=error), (401 if error else 200)


@auth.post("/logout")
def logout():
    from flask_login import current_user

    if current_user.is_authenticated:  # every copy of this session cookie dies too
        with transaction(db.session):
            users.end_sessions(db.session, current_user.id)
    logout_user()
    flash(_("You are logged out."))
    return redirect(url_for("auth.login"))
