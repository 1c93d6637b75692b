"""Sublessees and subleases: inside the allocation in space and time, never doubled."""

import pytest

from ipam import allocation, leasing
from ipam.errors import AddressConflict, ValidationError
from tests import factories as f


@pytest.fixture
def held(session):
    pool = f.pool(session, "198.18.0.0/24")
    cust = f.customer(session)
    alloc = allocation.allocate(
        session, pool, cust, prefix="198.18.0.0/28", actor="t", at="2026-01-01T00:00:00Z"
    )
    sub = f.sublessee(session, cust, at="2026-01-01T00:00:00Z")
    session.commit()
    return pool, cust, alloc, sub


def test_sublease_specific_and_next_free(session, held):
    _, _, alloc, sub = held
    a = leasing.sublease(session, alloc, sub, prefix="198.18.0.0/30", actor="t")
    b = leasing.sublease(session, alloc, sub, actor="t")
    c = leasing.sublease(session, alloc, sub, prefixlen=30, actor="t")
    assert (a.prefix, b.prefix, c.prefix) == ("198.18.0.0/30", "198.18.0.4", "198.18.0.8/30")


def test_sublease_overlap_and_outside(session, held, unchanged):
    _, cust, alloc, sub = held
    other = f.sublessee(session, cust)
    leasing.sublease(session, alloc, sub, prefix="198.18.0.8/29", actor="t")
    session.commit()
    with unchanged(), pytest.raises(AddressConflict) as err:
        leasing.sublease(session, alloc, other, prefix="198.18.0.12", actor="t")
    assert err.value.field == "prefix" and sub.name in err.value.message
    with unchanged(), pytest.raises(ValidationError) as err:
        leasing.sublease(session, alloc, other, prefix="198.18.0.16/30", actor="t")
    assert err.value.field == "prefix" and "outside allocation" in err.value.message
    with unchanged(), pytest.raises(ValidationError) as err:
        leasing.sublease(session, alloc, other, actor="t", at="2025-12-01T00:00:00Z")
    assert err.value.field == "valid_from" and "before allocation" in err.value.message
    first_half = leasing.sublease(session, alloc, other, prefixlen=29, actor="t")
    assert first_half.prefix == "198.18.0.0/29"
    session.commit()
    with unchanged(), pytest.raises(AddressConflict) as err:
        leasing.sublease(session, alloc, other, prefixlen=30, actor="t")
    assert err.value.field == "prefixlen" and "no free /30" in err.value.message


def test_sublessee_of_another_customer_refused(session, held, unchanged):
    _, _, alloc, _ = held
    stranger = f.sublessee(session, f.customer(session))
    session.commit()
    with unchanged(), pytest.raises(ValidationError) as err:
        leasing.sublease(session, alloc, stranger, actor="t")
    assert err.value.field == "sublessee"


def test_ending_allocation_ends_subleases(session, held, unchanged):
    _, _, alloc, sub = held
    lease = leasing.sublease(session, alloc, sub, prefixlen=30, actor="t")
    allocation.end_allocation(session, alloc, actor="t")
    assert lease.valid_to == alloc.valid_to and lease.end_reason.value == "allocation_ended"
    session.commit()
    with unchanged(), pytest.raises(ValidationError) as err:
        leasing.sublease(session, alloc, sub, actor="t")
    assert err.value.field == "allocation" and "ended" in err.value.message


def test_end_sublease_frees_it_for_another(session, held):
    _, cust, alloc, sub = held
    lease = leasing.sublease(session, alloc, sub, prefix="198.18.0.0/28", actor="t")
    leasing.end_sublease(session, lease, actor="t")
    other = f.sublessee(session, cust)
    assert (
        leasing.sublease(session, alloc, other, prefixlen=28, actor="t").prefix == "198.18.0.0/28"
    )


@pytest.mark.parametrize(
    "change,field,text",
    [
        ({"id_number": "91110108MA0000001X"}, "id_number", "GB 32100"),
        (
            {"kind": "person", "id_type": "resident_id", "id_number": "110105198803151231"},
            "id_number",
            "GB 11643",
        ),
        ({"phone": "12345"}, "phone", "phone"),
        ({"email": "nobody"}, "email", "e-mail"),
        ({"name": ""}, "name", "required"),
        ({"domains": ["not a domain"]}, "domains", "domain"),
        (
            {"kind": "organisation", "id_type": "resident_id", "id_number": f.resident_id(3)},
            "id_type",
            "organisation",
        ),
        ({"kind": "alien"}, "kind", "one of"),
        ({"colour": "red"}, "colour", "not a sublessee field"),
    ],
)
def test_sublessee_bad_input(session, held, unchanged, change, field, text):
    _, cust, _, _ = held
    with unchanged(), pytest.raises(ValidationError) as err:
        f.sublessee(session, cust, **change)
    assert err.value.field == field and text in err.value.message


def test_person_sublessee_with_resident_id(session, held):
    _, cust, _, _ = held
    person = f.sublessee(
        session, cust, kind="person", id_type="resident_id", id_number=f.resident_id(5), name="李明"
    )
    assert person.id_number == f.resident_id(5)
    leasing.update_sublessee(session, person, {"phone": "13788889999"}, actor="t")
    assert person.phone == "+8613788889999"


def test_allocation_cannot_end_before_its_sublease_starts(session, held, unchanged):
    _, _, alloc, sub = held
    leasing.sublease(session, alloc, sub, actor="t", at="2026-02-01T00:00:00Z")
    session.commit()
    with unchanged(), pytest.raises(ValidationError) as err:
        allocation.end_allocation(session, alloc, actor="t", at="2026-01-15T00:00:00Z")
    assert err.value.field == "valid_to" and "before sublease" in err.value.message


def test_ambiguous_name_is_refused(session, held, unchanged):
    _, cust, alloc, _ = held
    f.sublessee(session, cust, name="同名")
    f.sublessee(session, f.customer(session), name="同名")
    session.commit()
    with unchanged(), pytest.raises(ValidationError) as err:
        leasing.sublease(session, alloc, "同名", actor="t")
    assert err.value.field == "sublessee" and "several" in err.value.message
