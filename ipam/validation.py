"""Field checks for registration data (clause 17: true information).

Identity numbers use python-stdnum (GB 11643 resident IDs, GB 32100 unified
social credit codes), phones use phonenumbers (mainland China by default),
e-mail uses email-validator without network look-ups.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from .errors import ValidationError


def required(value, field: str, max_len: int = 200) -> str:
    if value is None or not str(value).strip():
        raise ValidationError("is required", field)
    value = str(value).strip()
    if len(value) > max_len:
        raise ValidationError("is longer than {max_len} characters", field, max_len=max_len)
    return value


def line(value, field: str, max_len: int = 200) -> str:
    """A required one-line value (a name): no line breaks or other control characters,
    which would otherwise reach mail headers and messages as forged lines."""
    value = required(value, field, max_len)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValidationError("must be one line, without control characters", field)
    return value


def optional(value, field: str, max_len: int = 200) -> str | None:
    if value is None or not str(value).strip():
        return None
    return required(value, field, max_len)


def choice(enum_cls, value, field: str):
    """Return the enum member for `value`, or say which values are allowed."""
    try:
        return enum_cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum_cls)
        raise ValidationError(
            "{value!r} is not one of: {allowed}", field, value=value, allowed=allowed
        ) from None


def resident_id(value, field: str = "id_number") -> str:
    """Return a valid 18-digit resident ID (check digit per GB 11643), upper-cased."""
    from stdnum import exceptions as stdnum_errors  # the checkers load when first used
    from stdnum.cn import ric

    value = required(value, field, 32).upper()
    try:
        return ric.validate(value)
    except stdnum_errors.InvalidChecksum:
        raise ValidationError(
            "{value} has a wrong check digit (GB 11643): expected {expected}",
            field,
            value=value,
            expected=ric.calc_check_digit(value),
        ) from None
    except stdnum_errors.InvalidComponent:
        raise ValidationError(
            "{value} has an invalid birth date or region code", field, value=value
        ) from None
    except stdnum_errors.ValidationError:
        raise ValidationError(
            "{value} is not an 18-digit resident ID number", field, value=value
        ) from None


def credit_code(value, field: str = "uscc") -> str:
    """Return a valid unified social credit code (check character per GB 32100)."""
    from stdnum import exceptions as stdnum_errors
    from stdnum.cn import uscc

    value = required(value, field, 32).upper()
    try:
        return uscc.validate(value)
    except stdnum_errors.InvalidChecksum:
        raise ValidationError(
            "{value} has a wrong check character (GB 32100): expected {expected}",
            field,
            value=value,
            expected=uscc.calc_check_digit(value[:17]),
        ) from None
    except stdnum_errors.ValidationError:
        raise ValidationError(
            "{value} is not an 18-character unified social credit code", field, value=value
        ) from None


def phone(value, field: str = "phone") -> str:
    """Return the phone number in E.164 form; numbers without +country are read as Chinese."""
    import phonenumbers

    value = required(value, field, 32)
    try:
        parsed = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException:
        raise ValidationError("{value!r} is not a phone number", field, value=value) from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError("{value!r} is not a valid phone number", field, value=value)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def email(value, field: str = "email") -> str:
    from email_validator import EmailNotValidError, validate_email

    value = required(value, field, 254)
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationError(
            "{value!r} is not a valid e-mail address: {exc}", field, value=value, exc=exc
        ) from None


def day(value, field: str) -> date | None:
    """Parse an ISO date (YYYY-MM-DD); empty means none."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError("{value!r} is not a date (YYYY-MM-DD)", field, value=value) from None


def instant(value, field: str) -> datetime | None:
    """Parse an ISO 8601 instant; one without a zone is refused rather than guessed."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        raw = str(value).strip()
        try:
            parsed = datetime.fromisoformat(
                raw.replace("Z", "+00:00") if raw.endswith("Z") else raw
            )
        except ValueError:
            raise ValidationError("{value!r} is not an ISO 8601 time", field, value=value) from None
    if parsed.tzinfo is None:
        raise ValidationError(
            "{value!s} has no time zone; add one, e.g. +08:00 or Z", field, value=value
        )
    return parsed.astimezone(UTC)


def local_instant(value, field: str, zone: str) -> datetime | None:
    """An instant typed by a person: ISO 8601 with an offset, or a local time in `zone`
    ("2026-01-01 08:00", "2026-01-01T08:00:30", or a date alone for its midnight).

    For forms only: the API and files keep refusing a time without a zone.
    """
    if value is None or str(value).strip() == "":
        return None
    raw = " ".join(str(value).split())
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError:
        raise ValidationError(
            "{raw!r} is not a time: write 2026-01-01 08:00 (local) or an ISO 8601 instant",
            field,
            raw=raw,
        ) from None
    if parsed.tzinfo is None:
        from zoneinfo import ZoneInfo

        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed.astimezone(UTC)


def person_list(items, field: str, *, need_id: bool = False) -> list[dict]:
    """Validate a list of people {name, role?, phone?, email?, id_number?}."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValidationError("must be a list of people", field)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValidationError("each entry must be an object with a name", f"{field}[{i}]")
        entry = {"name": required(item.get("name"), f"{field}[{i}].name")}
        if item.get("role"):
            entry["role"] = required(item["role"], f"{field}[{i}].role")
        if item.get("phone"):
            entry["phone"] = phone(item["phone"], f"{field}[{i}].phone")
        if item.get("email"):
            entry["email"] = email(item["email"], f"{field}[{i}].email")
        if item.get("id_number") or need_id:
            entry["id_number"] = resident_id(item.get("id_number"), f"{field}[{i}].id_number")
        out.append(entry)
    return out


def domain_list(value, field: str = "domains") -> list[str]:
    """A list (or space/comma separated text) of domain names, lower-cased."""
    if value in (None, ""):
        return []
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValidationError("must be a list of domain names", field)
    out = []
    for item in items:
        name = str(item).strip().lower().rstrip(".")
        labels = name.split(".")
        if len(labels) < 2 or not all(
            0 < len(label) <= 63
            and label.replace("-", "").isalnum()
            and not label.startswith("-")
            and not label.endswith("-")
            for label in labels
        ):
            raise ValidationError("{item!r} is not a domain name", field, item=item)
        out.append(name)
    return out
