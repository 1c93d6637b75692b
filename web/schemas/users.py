"""Schemas of logins and API tokens."""

from __future__ import annotations

from pydantic import Field

from ipam.models import Role

from .common import In, Instant, Out, Ref, ShortText


class TokenIn(In):
    name: ShortText = Field(description="what the token is for")


class TokenOut(Out):
    id: int
    name: str
    created_at: Instant
    revoked_at: Instant | None


class TokenIssued(TokenOut):
    token: str = Field(description="the secret, shown in this answer only")


class TokenList(Out):
    items: list[TokenOut]


class UserIn(In):
    username: ShortText
    password: ShortText = Field(description="at least 10 characters")
    role: Role
    customer: Ref | None = Field(None, description="for customer users")


class UserPatch(In):
    active: bool | None = None
    password: ShortText | None = None
    role: Role | None = Field(None, description="a new role: the user's sessions and tokens end")
    customer: Ref | None = Field(None, description="with role customer: the customer")


class UserOut(Out):
    id: int
    username: str
    role: Role
    customer_id: int | None
    active: bool


class UserList(Out):
    items: list[UserOut]
