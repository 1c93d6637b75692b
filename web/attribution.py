"""Who held an address at a time, as the caller may see it: one answer for the API and the UI."""

from __future__ import annotations

from ipam import attribution
from ipam.errors import NotFound, ValidationError

from . import replica
from .access import actor, customer_scope
from .usecase import run


def attribute(address, at, reveal: bool, reason):
    """Who held `address` at `at`; customer users get answers about their own holdings only."""
    if reveal:
        if customer_scope() is not None:
            raise ValidationError("customer users cannot reveal personal data", "reveal")
        result = run(lambda s: attribution.reveal(s, address, at, actor=actor(), reason=reason))
    else:
        result = attribution.attribution(replica.session(), address, at).masked()
    scope = customer_scope()
    if scope is not None and (result.customer is None or result.customer.get("id") != scope):
        raise NotFound("no holding of yours at that address and time", "address")
    return result
