"""Logins and API tokens (ipam/users.py)."""

import pytest

from ipam import users
from ipam.errors import NotFound, StateConflict, ValidationError
from ipam.models import ApiToken, Role
from tests import factories


def test_password_is_argon2_and_checked(session):
    user = users.create_user(session, "eng", "correct horse battery", "engineer", actor="t")
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash
    assert users.authenticate(session, "eng", "correct horse battery") is user
    assert users.authenticate(session, "eng", "wrong password!") is None
    assert users.authenticate(session, "nobody", "correct horse battery") is None
    users.set_active(session, user, False, actor="t")
    assert users.authenticate(session, "eng", "correct horse battery") is None


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("x y", "long enough pw", "engineer"), "username"),
        (("eng", "short", "engineer"), "password"),
        (("eng", "long enough pw", "boss"), "role"),
        (("eng", "long enough pw", "customer"), "customer"),
    ],
)
def test_bad_user_input_names_the_field(session, unchanged, args, field):
    with unchanged(), pytest.raises(ValidationError) as err:
        users.create_user(session, *args, actor="t")
    assert err.value.field == field


def test_customer_users_are_bound_and_others_are_not(session):
    cust = factories.customer(session)
    user = users.create_user(
        session, "c1", "long enough pw", "customer", customer=cust.uscc, actor="t"
    )
    assert user.role == Role.CUSTOMER and user.customer_id == cust.id
    with pytest.raises(ValidationError) as err:
        users.create_user(session, "e1", "long enough pw", "engineer", customer=cust.id, actor="t")
    assert err.value.field == "customer"


def test_tokens_are_stored_hashed_and_revocable(session):
    user = users.create_user(session, "bot", "long enough pw", "engineer", actor="t")
    token, secret = users.issue_token(session, user, "ci", actor="t")
    assert secret.startswith("ipam_") and secret not in token.digest
    assert session.query(ApiToken).filter_by(digest=secret).count() == 0
    who = users.user_for_token(session, secret)
    assert (who.id, who.username, who.role) == (user.id, "bot", Role.ENGINEER)
    other = users.create_user(session, "other", "long enough pw", "engineer", actor="t")
    with pytest.raises(NotFound):
        users.revoke_token(session, token.id, actor="t", owner=other)
    users.set_active(session, user, False, actor="t")
    assert users.user_for_token(session, secret) is None  # a disabled user's tokens stop
    users.set_active(session, user, True, actor="t")
    # Disabling revoked it: re-enabling the user does not bring the token back.
    assert users.user_for_token(session, secret) is None
    with pytest.raises(StateConflict):
        users.revoke_token(session, token.id, actor="t")
    fresh, fresh_secret = users.issue_token(session, user, "ci again", actor="t")
    assert users.user_for_token(session, fresh_secret).id == user.id
    users.revoke_token(session, fresh.id, actor="t")
    assert users.user_for_token(session, fresh_secret) is None
