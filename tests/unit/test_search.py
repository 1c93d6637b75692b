"""The search box: every kind of question, answered from the demo, within the caller's scope."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ipam import demo
from ipam.errors import ValidationError
from ipam.listing import EVERYONE, Scope
from ipam.models import AbuseCase, Customer
from ipam.search import search


@pytest.fixture
def ledger(session):
    demo.seed(session, echo=lambda *_: None)
    session.commit()
    return session


def kinds(hits):
    return [(h.kind, h.title) for h in hits]


def test_each_kind_of_question(ledger):
    s = ledger
    (hit,) = search(s, "198.18.7.9")
    assert (hit.kind, hit.key, hit.state) == ("address", "198.18.7.9", "subleased")
    assert hit.detail == "李明"  # the sublessee holding it now
    assert kinds(search(s, "198.18.7.0/24")) == [("prefix", "198.18.7.0/24")]
    assert kinds(search(s, "星河")) == [
        ("customer", "上海星河数据服务有限公司"),
        ("site", "bbs.xinghe.example"),  # 星河社区论坛
        ("site", "xinghe.example"),  # 星河云主机官网
    ]
    assert kinds(search(s, "91310115ma1k4qxt25")) == [("customer", "上海星河数据服务有限公司")]
    assert ("sublessee", "李明") in kinds(search(s, "李明"))
    found = kinds(search(s, "liming-blog.example"))
    assert ("sublessee", "李明") in found and ("site", "liming-blog.example") in found
    assert ("site", "bbs.xinghe.example") in kinds(search(s, "bbs.xinghe"))
    case = s.scalars(select(AbuseCase).order_by(AbuseCase.id)).first()
    assert ("case", f"#{case.id}") in kinds(search(s, f"#{case.id}"))
    assert ("case", f"#{case.id}") in kinds(search(s, f"case {case.id}"))
    assert search(s, "nothing-like-this") == []
    assert kinds(search(s, "100%_")) == []  # LIKE's wildcards are plain characters here


def test_a_customer_finds_only_its_own(ledger):
    s = ledger
    yunfan = s.scalars(select(Customer).where(Customer.name.startswith("北京云帆"))).one()
    mine = Scope(yunfan.id)
    assert search(s, "星河", mine) == []
    assert search(s, "198.18.7.9", mine) == []  # 上海星河's address now
    assert search(s, "198.18.7.0/24", mine) == []  # prefixes are the provider's view
    assert kinds(search(s, "云帆", mine)) == [("customer", yunfan.name)]
    others = s.scalars(select(AbuseCase.id).where(AbuseCase.customer_id != yunfan.id)).all()
    assert all(search(s, f"#{n}", mine) == [] for n in others)


@pytest.mark.parametrize("bad", ["", "   ", "x" * 201, "a\x00b"])
def test_what_cannot_be_searched_names_the_field(ledger, bad):
    with pytest.raises(ValidationError) as exc:
        search(ledger, bad, EVERYONE)
    assert exc.value.field == "q"
