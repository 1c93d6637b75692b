"""Messages raised in plain English below the web layer, in the user's language where shown.

ipam/ has no Flask, and the request schemas (web/api/endpoint.py) name the
mistake in a fixed phrase; both are looked up here by their text when an
error is rendered (web/errors.py, the UI's forms). A message with values in it
(a prefix, a number) is shown as it is until it has its own entry.
"""

from __future__ import annotations

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

# Listed so that extraction keeps them in the catalogue (the text is the key).
MESSAGES = (
    _l("is required"),
    _l("is not a field of this request"),
    _l("must be text"),
    _l("must be a whole number"),
    _l("must be a number"),
    _l("must be a finite number"),
    _l("must be true or false"),
    _l("must be a list"),
    _l("must be an object"),
    _l("must be a date (YYYY-MM-DD)"),
    _l("must not contain NUL characters"),
    _l("must be one line, without control characters"),
    _l("needs at least 5 different characters"),
    _l("is the last active admin: nobody could manage users"),
    _l("says too little: give at least 10 characters (case, request)"),
    _l("no maildir is set"),
    _l("the database is not answering; try again in a few seconds"),
    _l("is in the future: the ledger cannot say what will be held"),
    _l("is before 2000: no record of this ledger is that old"),
    _l("is in the future"),
    _l("must be after the start of the period (from)"),
    _l("the period is longer than ten years"),
    _l("must be between 1 and 365 days"),
    _l("customer users cannot reveal personal data"),
    _l("lies outside the provider's address space: no certificate"),
    _l("no signing key: run `ipam keys init` (or set IPAM_SIGNING_KEY)"),
    _l("is required: the addresses the site is served from"),
    _l("is not a site field"),
    _l("is closed already"),
    _l("the site is closed; register it again"),
    _l("no holding of yours at that address and time"),
    _l("is required: send the certificate file as the body"),
)


def translate(message: str | None) -> str | None:
    """The message in the user's language when the catalogue has it, else as it is."""
    return gettext(message) if message else message
