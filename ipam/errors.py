"""Domain errors; front doors map them to HTTP codes, form errors or CLI messages.

An error's message is a template with named values (`"no pool {ref!r}"`,
ref=...): the template is the message id the web's catalogue translates
(web/messages.py), the values are put in after translation, and `message` is
the English text logs, the CLI and stored rejections use.
"""

from __future__ import annotations


class Phrase:
    """Words with named values, kept apart so a front door can translate the words.

    Used for a part of a message made elsewhere (`"{block} {conflict}"`); its
    str() is the English text.
    """

    __slots__ = ("template", "params")

    def __init__(self, template: str, **params):
        self.template = template
        self.params = params

    def __str__(self) -> str:
        return self.template.format(**self.params) if self.params else self.template

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def render(self, words, state_word=str) -> str:
        return render(self, words, state_word)

    def as_json(self) -> dict:
        """To be stored beside its English text (a log written by the system), values as text."""
        return {"t": self.template, "p": {k: _stored(v) for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, data) -> Phrase | None:
        if not isinstance(data, dict) or not isinstance(data.get("t"), str):
            return None
        params = data.get("p") if isinstance(data.get("p"), dict) else {}
        return cls(data["t"], **{str(k): _loaded(v) for k, v in params.items()})


def render(phrase, words, state_word=str) -> str:
    """A Phrase or an IpamError with its template looked up by `words` (a gettext) and its
    values put in after: nested phrases likewise, enums by `state_word`. The one renderer
    of the web, the command line and the files."""
    import enum

    template = phrase.template
    if not template:
        return ""
    params = {}
    for key, value in phrase.params.items():
        if isinstance(value, Phrase | IpamError):
            value = render(value, words, state_word)
        elif isinstance(value, enum.Enum):
            value = state_word(value)
        params[key] = value
    try:
        return words(template).format(**params) if params else words(template)
    except (KeyError, IndexError, ValueError, AttributeError):  # a translation misnames a value
        return template.format(**params) if params else template


def _stored(value):
    return value.as_json() if isinstance(value, Phrase) else str(value)


def _loaded(value):
    return Phrase.from_json(value) or "" if isinstance(value, dict) else str(value)


class IpamError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "error"
    status = 400

    def __init__(self, message: str, field: str | None = None, **params):
        self.template = message
        self.params = params
        self.message = message.format(**params) if params else message
        super().__init__(self.message)
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "field": self.field}


class ValidationError(IpamError):
    """Input that can never be accepted as given."""

    code = "validation_error"
    status = 422


class NotFound(IpamError):
    code = "not_found"
    status = 404


class AddressConflict(IpamError):
    """The addresses are held, quarantined or otherwise not free at that time."""

    code = "address_conflict"
    status = 409


class PoolExhausted(IpamError):
    """No free block of the requested size is left in the pool."""

    code = "pool_exhausted"
    status = 409


class StateConflict(IpamError):
    """The object is not in a state that allows the change (e.g. already ended)."""

    code = "state_conflict"
    status = 409


class MailFailed(IpamError):
    """The mail server refused the message or could not be reached; nothing was changed."""

    code = "mail_failed"
    status = 502
