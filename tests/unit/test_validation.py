import pytest

from ipam import privacy, validation
from ipam.errors import ValidationError
from tests.factories import credit_code, resident_id


def test_resident_id_check_digit():
    good = resident_id(7)
    assert validation.resident_id(good.lower()) == good
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    with pytest.raises(ValidationError) as err:
        validation.resident_id(wrong, "id_number")
    assert err.value.field == "id_number" and "GB 11643" in err.value.message
    assert f"expected {good[17]}" in err.value.message


def test_credit_code_check_character():
    good = credit_code(42)
    assert validation.credit_code(good) == good
    wrong = good[:17] + ("A" if good[17] != "A" else "B")
    with pytest.raises(ValidationError) as err:
        validation.credit_code(wrong)
    assert err.value.field == "uscc" and "GB 32100" in err.value.message


@pytest.mark.parametrize("value", ["12345", "1380013800", "phone", "+86 999 0000"])
def test_bad_phone(value):
    with pytest.raises(ValidationError) as err:
        validation.phone(value, "contacts[0].phone")
    assert err.value.field == "contacts[0].phone"


def test_phone_normalised_to_e164():
    assert validation.phone("138 0013 8000") == "+8613800138000"
    assert validation.phone("010-88001234") == "+861088001234"


@pytest.mark.parametrize("value", ["no-at-sign", "a@", "a@b", "a b@example.com"])
def test_bad_email(value):
    with pytest.raises(ValidationError) as err:
        validation.email(value)
    assert err.value.field == "email"


def test_instant_needs_a_zone():
    with pytest.raises(ValidationError, match="time zone"):
        validation.instant("2026-01-01T00:00:00", "at")
    assert validation.instant("2026-01-01T00:00:00+08:00", "at").hour == 16


def test_mask():
    assert privacy.mask("+8613800138000") == "+86138****8000"
    assert privacy.mask_id("110105198803151232") == "1101**********1232"


def test_masked_finds_personal_data_wherever_it_sits():
    data = {"a": [{"phone": "13800138000", "b": {"id_number": "110105198803151232"}}], "n": 1}
    assert privacy.masked(data) == {
        "a": [{"phone": "138****8000", "b": {"id_number": "1101**********1232"}}],
        "n": 1,
    }
    assert data["a"][0]["phone"] == "13800138000"  # a copy: the original is untouched
