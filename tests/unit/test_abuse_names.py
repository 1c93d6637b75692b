"""Complaints that name only a URL or a domain (issue 14): found through the sites register,
then registered domains, to the holder at the event's time; else kept with the reason.

On the demo: the site liming-blog.example is served from 198.18.7.9 (sub-leased to 李明 by
上海星河 since 1 Jun 2026); yuanhang.example is 深圳远航's registered domain while it held one
/24; qingmu.example is 杭州青木's, which holds four blocks (a /28 and three /64s).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from ipam import demo, sites
from ipam.abuse import formats, ingest
from ipam.db import chunk_done
from ipam.models import AbuseCase, AbuseReport, Customer, RejectedReport


@pytest.fixture
def ledger(session):
    demo.seed(session, echo=lambda *_: None, abuse=False)
    session.commit()
    return session


def holder(s, report: AbuseReport) -> set[str]:
    return {
        name
        for (name,) in s.execute(
            select(Customer.name)
            .join(AbuseCase, AbuseCase.customer_id == Customer.id)
            .where(AbuseCase.family == report.family, AbuseCase.first == report.first)
        )
    }


def test_a_url_is_attributed_through_the_site_serving_it(ledger):
    s = ledger
    raw = (
        b"url,time,category,description\n"
        b"https://liming-blog.example/login.php,2026-07-02T03:00:00+08:00,phishing,fake bank\n"
    )
    result = ingest.ingest(s, raw, actor="test")
    s.commit()
    assert (result.stored, result.rejected_count) == (1, 0)
    report = s.get(AbuseReport, result.reports[0].id)
    assert report.prefix == "198.18.7.9" and report.holding == "held"
    assert report.details["domain"] == "liming-blog.example"
    assert report.details["url"].endswith("/login.php")
    assert report.details["resolved_via"].startswith("site ")
    case = s.scalars(select(AbuseCase).where(AbuseCase.first == report.first)).one()
    assert case.sublessee.name == "李明"  # the sublessee at the time


def test_registered_domains_give_the_holders_one_block_or_a_reason(ledger):
    s = ledger
    raw = (
        b"domain,time,category\n"
        b"www.yuanhang.example,2025-10-01T10:00:00+08:00,spam\n"
        b"shop.qingmu.example,2026-07-01T10:00:00+08:00,spam\n"
        b"nobody-registered.example,2026-07-01T10:00:00+08:00,spam\n"
    )
    result = ingest.ingest(s, raw, actor="test")
    s.commit()
    (stored,) = result.reports
    report = s.get(AbuseReport, stored.id)
    assert report.prefix == "198.19.10.0/24"  # 深圳远航's one /24 then
    assert holder(s, report) == {"深圳远航信息技术有限公司"}
    assert "registered domains of customer" in report.details["resolved_via"]
    reasons = {r.field: r.reason for r in s.scalars(select(RejectedReport))}
    assert reasons.keys() == {"domain"}
    rejected = sorted(r.reason for r in s.scalars(select(RejectedReport)))
    assert rejected[0].startswith("nobody-registered.example is in no site")
    assert "held 4 blocks" in rejected[1] and "杭州青木" in rejected[1]


def test_a_name_registered_later_is_found_on_retry(ledger):
    s = ledger
    raw = json.dumps({
        "xarf_version": "4.2.0", "category": "infrastructure", "type": "malware",
        "timestamp": "2026-11-01T02:00:00Z", "source_identifier": "http://portal.newsite.example/",
    }).encode()  # fmt: skip
    result = ingest.ingest(s, raw, actor="test")
    s.commit()
    (row,) = result.rejected
    assert row.field == "domain"
    yunfan = s.scalars(select(Customer).where(Customer.name.startswith("北京云帆"))).one()
    sites.add_site(
        s, yunfan, {"name": "门户", "domain": "portal.newsite.example", "category": "general",
                    "icp_number": "京ICP备1号", "addresses": ["198.18.7.130"]}, actor="test",
    )  # fmt: skip
    s.commit()
    again = ingest.retry_rejected(s, row.id, actor="test")
    s.commit()
    report = s.get(AbuseReport, again.reports[0].id)
    assert report.prefix == "198.18.7.130" and holder(s, report) == {yunfan.name}
    assert "registered after the event" in report.details["resolved_via"]


def test_xarf_names_and_the_maildir(ledger, tmp_path):
    s = ledger
    v4 = json.dumps({
        "xarf_version": "4.2.0", "category": "content", "type": "phishing",
        "timestamp": "2026-07-03T01:00:00Z", "source_identifier": "liming-blog.example",
        "reporter": {"org": "示例安全", "contact": "soc@cert.example"},
    }).encode()  # fmt: skip
    (rec,), _ = formats.read(v4, datetime(2026, 11, 30, tzinfo=UTC))
    assert rec.block is None and rec.details["domain"] == "liming-blog.example"
    mail = (
        b"From: cert@cert.example\nTo: abuse@provider.example\nSubject: X-ARF report\n"
        b"X-XARF: PLAIN\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\nA phishing page.\n"
        b"--b\nContent-Type: text/plain; name=report.txt\n\n"
        b"Reported-From: cert@cert.example\nCategory: fraud\nReport-Type: phishing\n"
        b"Source-Type: uri\nSource: https://liming-blog.example/pay\n"
        b"Date: 2026-07-04T09:00:00+08:00\n--b--\n"
    )
    box = tmp_path / "box"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.x").write_bytes(mail)
    (box / "new" / "2.x").write_bytes(v4)
    result = ingest.poll_maildir(s, box, actor="scheduler:maildir", chunk_done=chunk_done(s))
    s.commit()
    assert (result.stored, result.rejected_count) == (2, 0)
    assert {r.prefix for r in s.scalars(select(AbuseReport))} == {"198.18.7.9"}


@pytest.mark.parametrize("bad", ["http://", "not a name", "-x.example", "a" * 300 + ".example"])
def test_what_is_neither_an_address_nor_a_name_is_refused(bad):
    with pytest.raises(formats.FormatError) as exc:
        formats.reported_source(bad, "url")
    assert exc.value.field == "url"
