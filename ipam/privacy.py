"""Personal data (ID numbers, phones) leaves masked, or revealed with a reason on record.

Invariant 9: one masking rule for every page, answer, export, mail and log
line, and one way to lift it (`check_reveal` + an audit entry of who, what
and why). Data structures are masked by key, wherever the key sits, so a new
export that carries a holder's snapshot is masked without knowing its shape.
"""

from __future__ import annotations

from .errors import ValidationError
from .validation import required

# Keys whose values are personal data, and how much of each stays readable.
ID_KEYS = frozenset({"id_number"})
PHONE_KEYS = frozenset({"phone", "contact_phone", "mobile"})
REVEAL_REASON_MIN = 10  # "x" is no reason a regulator would accept


def mask(value: str | None, keep_start: int = 3, keep_end: int = 4) -> str | None:
    """Mask the middle of one value: 13800138000 -> 138****8000 (+86 keeps its carrier)."""
    if not value:
        return value
    value = str(value)
    if value.startswith("+86"):  # keep the country code and the carrier prefix
        keep_start = 6
    if len(value) <= keep_start + keep_end:
        return "*" * len(value)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + value[-keep_end:]


def mask_id(value: str | None) -> str | None:
    """An identity number keeps its first and last four characters."""
    return mask(value, 4, 4)


def masked(data):
    """A copy of `data` (dicts, lists, plain values) with every personal value masked."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if key in ID_KEYS and isinstance(value, str):
                out[key] = mask_id(value)
            elif key in PHONE_KEYS and isinstance(value, str):
                out[key] = mask(value)
            else:
                out[key] = masked(value)
        return out
    if isinstance(data, list | tuple):
        return [masked(item) for item in data]
    return data


def check_reveal(reason) -> str:
    """The reason given for revealing personal data, refused when it says too little."""
    reason = required(reason, "reason", 2000)
    if len(reason) < REVEAL_REASON_MIN:
        raise ValidationError(
            "says too little: give at least {REVEAL_REASON_MIN} characters (case, request)",
            "reason",
            REVEAL_REASON_MIN=REVEAL_REASON_MIN,
        )
    return reason
