"""Who am I, API tokens and users (admin) in the JSON API."""

from __future__ import annotations

from flask_login import current_user

from ipam import users

from ..access import ADMIN, ANY, actor
from ..extensions import db
from ..schemas.users import (
    TokenIn,
    TokenIssued,
    TokenList,
    TokenOut,
    UserIn,
    UserList,
    UserOut,
    UserPatch,
)
from ..usecase import run
from .endpoint import endpoint

ADMINS = frozenset({ADMIN})


@endpoint("GET", "/me", access=ANY, out=UserOut)
def me():
    """The logged-in user"""
    return current_user


@endpoint("GET", "/tokens", access=ANY, out=TokenList)
def tokens():
    """Your API tokens"""
    return {"items": users.tokens_of(db.session, current_user)}


@endpoint("POST", "/tokens", access=ANY, body=TokenIn, out=TokenIssued, status=201)
def token_issue(body: TokenIn):
    """Create an API token (its secret is in this answer only)"""
    token, secret = run(lambda s: users.issue_token(s, current_user.id, body.name, actor=actor()))
    return {**TokenOut.model_validate(token).model_dump(), "token": secret}


@endpoint("DELETE", "/tokens/<int:token_id>", access=ANY, out=TokenOut)
def token_revoke(token_id):
    """Revoke one of your tokens"""
    return run(lambda s: users.revoke_token(s, token_id, actor=actor()))


@endpoint("GET", "/users", access=ADMINS, out=UserList)
def users_list():
    """Users (admin)"""
    return {"items": users.list_users(db.session)}


@endpoint("POST", "/users", access=ADMINS, body=UserIn, out=UserOut, status=201)
def user_add(body: UserIn):
    """Add a user (admin)"""
    return run(
        lambda s: users.create_user(
            s, body.username, body.password, body.role, customer=body.customer, actor=actor()
        )
    )


@endpoint("PATCH", "/users/<int:user_id>", access=ADMINS, body=UserPatch, out=UserOut)
def user_update(user_id, body: UserPatch):
    """Disable or re-enable a user, set a password, or change the role (admin)"""

    def change(s):
        user = users.get_user(s, user_id)
        if body.password is not None:
            users.set_password(s, user, body.password, actor=actor())
        if body.role is not None:
            users.set_role(s, user, body.role, customer=body.customer, actor=actor())
        if body.active is not None:
            users.set_active(s, user, body.active, actor=actor())
        return user

    return run(change)
