"""The smaller holes an attacker's and an auditor's look found (issue 15, item 9)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ipam import attribution, customers, users
from ipam.errors import StateConflict, ValidationError
from tests import factories


def test_names_are_one_line(session, unchanged):
    with unchanged():
        for name in ("好公司\r\nBcc: all@example.com", "tab\there", "bell\x07"):
            with pytest.raises(ValidationError) as err:
                factories.customer(session, name=name)
            assert err.value.field == "name"
    cust = factories.customer(session)
    session.commit()
    with unchanged(), pytest.raises(ValidationError) as err:
        factories.sublessee(session, cust, name="x\nReply-To: evil@example.com")
    assert err.value.field == "name"


def test_a_reveal_needs_a_reason_worth_the_name(session):
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for reason in ("x", "  because  "):
        with pytest.raises(ValidationError) as err:
            attribution.reveal(session, "198.18.7.9", at, actor="auditor", reason=reason)
        assert err.value.field == "reason"
    attribution.reveal(session, "198.18.7.9", at, actor="auditor", reason="PSB request 2026-17")


def test_passwords_need_variety_and_usernames_ignore_case(session, unchanged):
    with unchanged():
        with pytest.raises(ValidationError) as err:
            users.create_user(session, "bot", "aaaaaaaaaaaa", "engineer", actor="t")
        assert err.value.field == "password"
    users.create_user(session, "Alice", "long enough pw", "engineer", actor="t")
    session.commit()
    with unchanged(), pytest.raises(ValidationError) as err:
        users.create_user(session, "alice", "long enough pw", "auditor", actor="t")
    assert err.value.field == "username" and "taken" in err.value.message


def test_the_last_active_admin_cannot_be_disabled(session, unchanged):
    root = users.create_user(session, "root", "long enough pw", "admin", actor="t")
    session.commit()
    with unchanged(), pytest.raises(StateConflict) as err:
        users.set_active(session, root, False, actor="user:root")
    assert err.value.field == "active"
    users.create_user(session, "second", "long enough pw", "admin", actor="t")
    users.set_active(session, root, False, actor="user:second")  # another admin remains
    assert root.active is False


def test_search_takes_percent_and_underscore_literally(session):
    factories.customer(session, name="北京甲有限公司")
    factories.customer(session, name="上海乙_有限公司")
    session.commit()
    names = {
        pattern: [c.name for c in customers.list_customers(
            session, customers.CustomerFilter(name_contains=pattern))[0]]
        for pattern in ("%", "_", "乙_")
    }  # fmt: skip
    assert names == {"%": [], "_": ["上海乙_有限公司"], "乙_": ["上海乙_有限公司"]}


def test_no_customer_takes_another_customers_exact_name(session, unchanged):
    from ipam import change_requests

    a = factories.customer(session, name="北京甲公司")
    b = factories.customer(session, name="上海乙公司")
    session.commit()
    with unchanged():
        with pytest.raises(ValidationError) as err:
            factories.customer(session, name="北京甲公司")
        assert err.value.field == "name"
        with pytest.raises(ValidationError) as err:
            customers.update_customer(session, b, {"name": "北京甲公司"}, actor="t")
        assert err.value.field == "name"
        with pytest.raises(ValidationError) as err:  # refused when asked, not only on approval
            change_requests.submit(
                session, b, "customer", {"name": "北京甲公司"}, reason="rename", actor="user:b"
            )
        assert err.value.field == "name"
    # Its own name again, or a free one, is fine; look-ups by name still find one customer.
    customers.update_customer(session, a, {"name": "北京甲公司"}, actor="t")
    customers.update_customer(session, b, {"name": "上海乙丙公司"}, actor="t")
    assert customers.get_customer(session, "北京甲公司").id == a.id
