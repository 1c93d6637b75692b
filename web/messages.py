"""Messages raised in plain English below the web layer, in the user's language where shown.

ipam/ has no Flask: a domain error carries a template (its message id) and
named values (ipam/errors.py); the template is looked up in the catalogue
when the error is rendered (web/errors.py, the UI's forms) and the values put
in afterwards. Templates are extracted from the raise sites (babel.cfg's
keywords); the fixed phrases listed below are those made elsewhere.
"""

from __future__ import annotations

import functools
from pathlib import Path

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from ipam.errors import IpamError, Phrase, render

from .labels import label

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
    # What a reference names, put into "no {what} {ref!r}" and its kin.
    _l("allocation"),
    _l("sublease"),
    _l("sublessee"),
    _l("customer"),
    _l("user"),
    _l("probe schedule"),
    _l("case"),
    _l("issued"),
    _l("request"),
    _l("change_request"),
    _l("site"),
    # The sites register's categories (ipam/sites.py) and interactive services (clause 4).
    _l("general"),
    _l("ecommerce"),
    _l("news"),
    _l("publishing"),
    _l("education"),
    _l("medical"),
    _l("drugs"),
    _l("culture"),
    _l("broadcasting"),
    _l("forum"),
    _l("bbs"),
    _l("blog"),
    _l("chat"),
    _l("nothing"),
    # The incident reminders' stages (ipam/abuse/incidents.py STAGES).
    _l("half time"),
    _l("one hour left"),
    _l("deadline passed"),
)


def language() -> str:
    """The request's language, "zh" or "en" (files and pictures are made in it)."""
    from flask_babel import get_locale

    return "en" if str(get_locale()) == "en" else "zh"


def translate(message: str | None) -> str | None:
    """The message in the user's language when the catalogue has it, else as it is."""
    return gettext(message) if message else message


def translate_error(exc: IpamError | Phrase) -> str:
    """A domain error's message in the user's language: its template translated, then its
    values put in (states and kinds by their label, nested phrases translated likewise)."""
    return render(exc, gettext, label)


def logged(row) -> str:
    """A history line's text (a case event's comment, an incident action's text, a finding's
    summary): what the system wrote in the reader's language, what a person wrote as written."""
    phrase = Phrase.from_json(getattr(row, "phrase", None))
    if phrase is not None:
        return translate_error(phrase)
    for name in ("comment", "text", "summary", "error", "reason"):
        if getattr(row, name, None):
            return getattr(row, name)
    return ""


@functools.lru_cache(maxsize=4)
def catalogue(lang: str):
    """A gettext for `lang` that needs no request (files, the command line)."""
    if lang != "zh":
        return lambda text: text
    from babel.support import Translations

    return Translations.load(str(Path(__file__).parent / "translations"), ["zh"]).gettext


def cli_language() -> str:
    """The command line's language: IPAM_LANG, else the locale's (LC_ALL, LC_MESSAGES, LANG)
    when it is Chinese, else English."""
    import os

    for name in ("IPAM_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def cli_message(exc: IpamError) -> str:
    """A refusal as the command line prints it ("field: reason"), in its language."""
    if cli_language() != "zh":
        return str(exc)
    words = catalogue("zh")
    text = render(exc, words, lambda v: words(str(v.value)))
    return f"{exc.field}: {text}" if exc.field else text
