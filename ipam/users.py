"""People who log in, their roles, and API tokens for scripts.

Passwords are hashed with Argon2id (memory-hard); API tokens are random
strings of which only the SHA-256 is stored, so a leaked table reveals none.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from . import audit, validation
from .customers import get_customer
from .db import utcnow
from .errors import NotFound, StateConflict, ValidationError
from .lookup import find_by_ref
from .models import ApiToken, Role, User

# IPAM_PASSWORD_COST=test makes hashing nearly free, for test suites only: a hash
# made that way is re-hashed at full cost on the next login of a normal process.
COSTS = {"default": None, "test": profiles.CHEAPEST}


@functools.cache
def _hasher() -> PasswordHasher:
    """The Argon2id hasher, built on first use (not at import: a CLI start pays nothing)."""
    cost = os.environ.get("IPAM_PASSWORD_COST") or "default"
    if cost not in COSTS:
        raise ValidationError(
            "{cost!r} is not one of {choices}",
            "IPAM_PASSWORD_COST",
            cost=cost,
            choices=", ".join(COSTS),
        )
    params = COSTS[cost]
    return PasswordHasher() if params is None else PasswordHasher.from_parameters(params)


@functools.cache
def _dummy() -> str:
    """Verified against when the user does not exist, so both paths cost the same."""
    return _hasher().hash("not a password")


TOKEN_PREFIX = "ipam_"
MIN_PASSWORD = 10
MIN_DISTINCT = 5  # "aaaaaaaaaaaa" is long and guessed at once


def _password(value) -> str:
    if not isinstance(value, str) or len(value) < MIN_PASSWORD:
        raise ValidationError(
            "must be at least {MIN_PASSWORD} characters", "password", MIN_PASSWORD=MIN_PASSWORD
        )
    if len(value) > 200:
        raise ValidationError("is longer than 200 characters", "password")
    if len(set(value)) < MIN_DISTINCT:
        raise ValidationError(
            "needs at least {MIN_DISTINCT} different characters",
            "password",
            MIN_DISTINCT=MIN_DISTINCT,
        )
    return value


def get_user(session: Session, ref, field: str = "user") -> User:
    """Find a user by id or username."""
    user = find_by_ref(session, User, ref, field, "user", lambda key: User.username == key)
    if user is None:
        raise NotFound("no user {ref!r}", field, ref=ref)
    return user


def _role_and_customer(session: Session, role, customer) -> tuple[Role, int | None]:
    role = validation.choice(Role, role, "role")
    if role == Role.CUSTOMER:
        if customer in (None, ""):
            raise ValidationError("is required for a customer user", "customer")
        return role, get_customer(session, customer).id
    if customer not in (None, ""):
        raise ValidationError(
            "only customer users belong to a customer, not {role}", "customer", role=role
        )
    return role, None


def create_user(session: Session, username, password, role, *, customer=None, actor: str) -> User:
    """Create a login; a customer user is bound to one customer, other roles to none."""
    username = validation.required(username, "username", 64)
    if not all(c.isalnum() or c in "._-@" for c in username):
        raise ValidationError("may hold letters, digits and . _ - @ only", "username")
    role, customer_id = _role_and_customer(session, role, customer)
    password = _password(password)
    # "Alice" and "alice" would be two logins that people take for one.
    if session.execute(
        select(User.id).where(func.lower(User.username) == username.lower())
    ).first():
        raise ValidationError("{username!r} is taken", "username", username=username)
    user = User(
        username=username,
        password_hash=_hasher().hash(password),
        role=role,
        customer_id=customer_id,
        active=True,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor,
        "user.add",
        user,
        {"username": username, "role": role.value, "customer_id": customer_id},
    )
    return user


def end_sessions(session: Session, user) -> User:
    """Every login session of the user ends: their ids carry the key this replaces."""
    user = get_user(session, user)
    user.session_key = secrets.token_hex(16)
    session.flush()
    return user


def session_user(session: Session, session_id: str) -> User | None:
    """The active user a login session id ("<id>:<key>") speaks for, or None."""
    user_id, _, key = (session_id or "").partition(":")
    user = session.get(User, int(user_id)) if user_id.isdigit() and key else None
    if user is None or not user.active or not hmac.compare_digest(user.session_key, key):
        return None
    return user


def set_password(session: Session, user, password, *, actor: str) -> User:
    user = get_user(session, user)
    user.password_hash = _hasher().hash(_password(password))
    end_sessions(session, user)
    audit.record(session, actor, "user.password", user, {"username": user.username})
    return user


def change_own_password(session: Session, user, current, new, *, actor: str) -> User:
    """A user replaces their own password, proving they know the current one."""
    user = get_user(session, user)
    try:
        _hasher().verify(user.password_hash, current or "")
    except (VerificationError, InvalidHashError):
        raise ValidationError("is not your current password", "current_password") from None
    return set_password(session, user, new, actor=actor)


def _other_admins(session: Session, user: User) -> int:
    return session.scalar(
        select(func.count()).where(User.role == Role.ADMIN, User.active, User.id != user.id)
    )


def _end_everything(session: Session, user: User) -> None:
    """Every session and token of the user ends: nothing issued before keeps working."""
    end_sessions(session, user)
    now = utcnow()
    for token in tokens_of(session, user):
        if token.revoked_at is None:
            token.revoked_at = now


def set_active(session: Session, user, active: bool, *, actor: str) -> User:
    """Disable or re-enable a login. Disabling ends its sessions and revokes its tokens,
    so re-enabling brings neither back: the user logs in again and gets new tokens."""
    user = get_user(session, user)
    if not active and user.active and user.role == Role.ADMIN and _other_admins(session, user) == 0:
        raise StateConflict("is the last active admin: nobody could manage users", "active")
    user.active = bool(active)
    if not user.active:
        _end_everything(session, user)
    session.flush()
    audit.record(session, actor, "user.active", user, {"active": user.active})
    return user


def set_role(session: Session, user, role, *, customer=None, actor: str) -> User:
    """Give a login another role (and customer). Its sessions end and its tokens are revoked:
    nothing issued under the old role keeps working under the new one."""
    user = get_user(session, user)
    role, customer_id = _role_and_customer(session, role, customer)
    if role == user.role and customer_id == user.customer_id:
        return user
    if user.role == Role.ADMIN and role != Role.ADMIN and user.active:
        if _other_admins(session, user) == 0:
            raise StateConflict("is the last active admin: nobody could manage users", "role")
    before = {"role": user.role.value, "customer_id": user.customer_id}
    user.role, user.customer_id = role, customer_id
    _end_everything(session, user)
    session.flush()
    audit.record(
        session, actor, "user.role", user,
        {"from": before, "to": {"role": role.value, "customer_id": customer_id}},
    )  # fmt: skip
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """Return the active user with this password, or None; never says which part was wrong."""
    user = session.execute(
        select(User).where(User.username == (username or "").strip())
    ).scalar_one_or_none()
    try:
        _hasher().verify(user.password_hash if user else _dummy(), password or "")
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = _hasher().hash(password)
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user, name, *, actor: str) -> tuple[ApiToken, str]:
    """Create an API token; the secret is returned this once and never stored."""
    user = get_user(session, user)
    name = validation.required(name, "name")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, digest=_digest(secret), created_at=utcnow())
    session.add(token)
    session.flush()
    audit.record(session, actor, "token.issue", token, {"user": user.username, "name": name})
    return token, secret


def revoke_token(session: Session, token_id, *, actor: str, owner: User | None = None) -> ApiToken:
    """Revoke a token (of `owner` only, when given); revoked tokens are refused at once."""
    token = session.get(ApiToken, int(token_id)) if str(token_id).isdigit() else None
    if token is None or (owner is not None and token.user_id != owner.id):
        raise NotFound("no token {token_id!r}", "token", token_id=token_id)
    if token.revoked_at is not None:
        raise StateConflict("is revoked already", "token")
    token.revoked_at = utcnow()
    session.flush()
    audit.record(session, actor, "token.revoke", token, {"name": token.name})
    return token


@dataclass(frozen=True)
class Principal:
    """Who an API token speaks for: the columns a request needs, read in one plain query."""

    id: int
    username: str
    role: Role
    customer_id: int | None
    active: bool = True
    is_authenticated = True
    is_anonymous = False
    is_active = True

    def get_id(self) -> str:
        return str(self.id)


_TOKEN_SQL = text(
    "SELECT u.id, u.username, u.role, u.customer_id FROM api_token t "
    "JOIN user_account u ON u.id = t.user_id "
    "WHERE t.digest = :digest AND t.revoked_at IS NULL AND u.active"
)


def user_for_token(session: Session, secret: str) -> Principal | None:
    """Return who a live token of an active user speaks for, or None.

    Checked on every API request, so revoking a token or disabling its user
    takes effect at once; a plain query keeps that check cheap.
    """
    if not secret or not secret.startswith(TOKEN_PREFIX):
        return None
    row = session.execute(_TOKEN_SQL, {"digest": _digest(secret)}).first()
    if row is None:
        return None
    return Principal(row.id, row.username, Role(row.role), row.customer_id)


def tokens_of(session: Session, user: User | Principal) -> list[ApiToken]:
    return list(
        session.execute(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
        ).scalars()
    )


def list_users(session: Session) -> list[User]:
    return list(session.execute(select(User).order_by(User.username)).scalars())
