"""Domain errors; front doors map them to HTTP codes, form errors or CLI messages."""


class IpamError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "error"
    status = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
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
