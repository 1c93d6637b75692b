"""The auditor's reports against a history written out by hand (SQLite and PostgreSQL).

The history: pool 198.18.0.0/16; 甲 takes 198.18.1.0/24 on 1 Jan 2026, sub-leases
198.18.1.8/29 to a person from 1 Feb (registered and backdated), changes its contact on
1 Mar; 乙 takes 198.18.2.0/25 on 5 Jan and exits on 1 Apr (quarantine 30 days). 甲 runs a
site on 198.18.1.20 from 10 Jan whose ICP number is added on 1 Mar.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select, update

from ipam import allocation, audit, customers, reclamation, sites
from ipam.errors import NotFound, ValidationError
from ipam.listing import EVERYONE, Scope
from ipam.models import AuditLog, Finding, FindingKind
from ipam.reports import files, get_report, issued, prepare, rows
from ipam.reports.anchors import anchor_of
from ipam.reports.base import Params
from tests import factories

ZONE = "Asia/Shanghai"


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def history(session):
    s = session
    pool = factories.pool(s, "198.18.0.0/16", "lab")
    jia = factories.customer(
        s, "甲科技有限公司", at=t("2025-12-01T00:00:00"),
        contacts=[{"name": "张伟", "phone": "13800138000", "email": "a@jia.example"}],
    )  # fmt: skip
    yi = factories.customer(s, "乙数据有限公司", at=t("2025-12-01T00:00:00"))
    a = allocation.allocate(
        s, pool, jia, prefix="198.18.1.0/24", purpose="IDC", actor="test",
        at=t("2026-01-01T02:00:00"),
    )  # fmt: skip
    b = allocation.allocate(
        s, pool, yi, prefix="198.18.2.0/25", purpose="hosting", actor="test",
        at=t("2026-01-05T02:00:00"),
    )  # fmt: skip
    person = factories.sublessee(
        s, jia, kind="person", name="王芳", id_type="resident_id",
        id_number=factories.resident_id(7), phone="13912345678", at=t("2026-01-20T00:00:00"),
    )  # fmt: skip
    from ipam import leasing

    sub = leasing.sublease(
        s, a, person, prefix="198.18.1.8/29", actor="test", at=t("2026-02-01T00:00:00")
    )
    site = sites.add_site(
        s, jia, {"name": "甲官网", "domain": "www.jia.example", "category": "news",
                 "addresses": ["198.18.1.20"], "interactive": "forum",
                 "admin_accounts": [{"account": "root", "phone": "13700001111"}]},
        actor="test", at=t("2026-01-10T00:00:00"),
    )  # fmt: skip
    customers.update_customer(
        s, jia, {"contacts": [{"name": "李静", "phone": "13511112222"}]}, actor="test",
        at=t("2026-03-01T00:00:00"),
    )  # fmt: skip
    sites.update_site(
        s, site.id, {"icp_number": "京ICP备2026000001号"}, actor="test",
        at=t("2026-03-01T00:00:00"),
    )  # fmt: skip
    reclamation.customer_exit(
        s, yi, actor="user:engineer", at=t("2026-04-01T00:00:00"), quarantine_days=30
    )
    s.commit()
    return {"s": s, "jia": jia, "yi": yi, "a": a, "b": b, "sub": sub, "person": person,
            "site": site, "pool": pool}  # fmt: skip


def ask(s, name, scope=EVERYONE, **asked):
    report, params = prepare(s, name, scope, zone=ZONE, **asked)
    return report, params, list(rows(s, report, params, scope))


def col(report, rows_, key):
    i = [c.key for c in report.columns].index(key)
    return [r[i] for r in rows_]


def test_ip_filing_at_an_instant_states_holders_as_they_were(history):
    s, person = history["s"], history["person"]
    report, _p, got = ask(s, "ip_filing", at="2026-02-15")
    assert col(report, got, "prefix") == ["198.18.1.0/24", "198.18.2.0/25", "198.18.1.8/29"]
    assert col(report, got, "count") == [256, 128, 8]
    assert col(report, got, "first")[2] == "198.18.1.8"
    assert col(report, got, "last")[2] == "198.18.1.15"
    assert col(report, got, "holder") == ["甲科技有限公司", "乙数据有限公司", "王芳"]
    assert col(report, got, "holder_type") == ["customer", "customer", "sublessee"]
    assert col(report, got, "status") == ["allocated", "allocated", "subleased"]
    # The contact in force on 15 Feb (changed on 1 Mar), its phone masked.
    assert col(report, got, "contact")[0] == "张伟 +86138****8000 a@jia.example"
    assert (
        col(report, got, "id_number")[2] == person.id_number[:4] + "*" * 10 + person.id_number[-4:]
    )
    assert col(report, got, "customer")[2] == "甲科技有限公司"
    # Now: 乙 has exited; 甲's contact is the new one.
    report, _p, now = ask(s, "ip_filing")
    assert col(report, now, "prefix") == ["198.18.1.0/24", "198.18.1.8/29"]
    assert col(report, now, "contact")[0] == "李静 +86135****2222"
    # One customer, one pool.
    _r, _p, only = ask(s, "ip_filing", at="2026-02-15", customer="乙数据有限公司")
    assert col(report, only, "prefix") == ["198.18.2.0/25"]
    _r, _p, none = ask(s, "ip_filing", at="2026-02-15", pool="lab", customer=history["jia"].id)
    assert len(none) == 2


def test_ip_filing_changes_with_deadlines_and_what_was_filed(history):
    s = history["s"]
    report, params, got = ask(s, "ip_filing_changes", start="2026-01-01", end="2026-04-30")
    seen = [
        (c, p) for c, p in zip(col(report, got, "change"), col(report, got, "prefix"), strict=True)
    ]
    assert seen == [
        ("new", "198.18.1.0/24"),
        ("new", "198.18.2.0/25"),
        ("new", "198.18.1.8/29"),
        ("changed", "198.18.1.0/24"),  # 甲's contact, 1 Mar
        ("ended", "198.18.2.0/25"),  # 乙's exit, 1 Apr
    ]
    assert col(report, got, "deadline")[0] == t("2026-01-31T02:00:00")
    assert set(col(report, got, "filing")) == {"overdue"}  # all long past 30 days, none filed
    # Filing the first quarter's changes marks those inside it as filed.
    q1 = Params(start=t("2025-12-31T16:00:00"), end=t("2026-03-31T16:00:00"), zone=ZONE)
    record = issued.issue(s, "ip_filing_changes", q1, "csv", "zh", actor="user:auditor")
    s.commit()
    _r, _p, again = ask(s, "ip_filing_changes", start="2026-01-01", end="2026-04-30")
    assert col(report, again, "filing") == ["filed"] * 4 + ["overdue"]
    assert col(report, again, "filed_in")[:4] == [f"#{record.id}"] * 4
    # A change still within its deadline is pending.
    _r, _p, pending = ask(
        s, "ip_filing_changes", start="2026-01-01", end="2026-01-02", deadline_days=365
    )
    assert col(report, pending, "filing") == ["filed"]


def test_sublessee_register_and_clause6_as_of_an_instant(history):
    s = history["s"]
    report, _p, before = ask(s, "sublessees", at="2026-01-25")
    assert before == []  # registered, but no sublease yet
    report, _p, got = ask(s, "sublessees", at="2026-02-15")
    assert col(report, got, "sublessee") == ["王芳"]
    assert col(report, got, "phone") == ["+86139****5678"]
    assert col(report, got, "prefix") == ["198.18.1.8/29"]
    report, _p, c6 = ask(s, "clause6", at="2026-02-15")
    by = {r[0]: r for r in c6}
    assert set(by) == {"甲科技有限公司", "乙数据有限公司"}
    jia = dict(zip([c.key for c in report.columns], by["甲科技有限公司"], strict=True))
    assert jia["domain"] == "www.jia.example" and jia["icp_number"] is None  # added 1 Mar
    assert jia["contacts"] == "张伟 +86138****8000 a@jia.example"
    assert jia["admins"] == "root +86137****1111" and jia["interactive"] == "forum"
    assert by["乙数据有限公司"][5] is None  # no site: the customer's row alone
    _r, _p, later = ask(s, "clause6", at="2026-05-01")
    assert [r[0] for r in later] == ["甲科技有限公司"]  # 乙 exited on 1 Apr
    assert (
        dict(zip([c.key for c in report.columns], later[0], strict=True))["icp_number"]
        == "京ICP备2026000001号"
    )


def test_reclamation_compliance_and_audit_log(history):
    s = history["s"]
    report, _p, got = ask(s, "reclamation", start="2026-03-01", end="2026-06-01")
    # The cool-down ends on 1 May, but only the release job releases: not run here.
    assert col(report, got, "event") == ["exit", "quarantined"]
    assert col(report, got, "actor")[:2] == ["user:engineer", "user:engineer"]
    assert col(report, got, "customer")[0] == "乙数据有限公司"
    assert col(report, got, "until")[1] == t("2026-05-01T00:00:00")
    report, _p, comp = ask(s, "compliance", start="2026-01-01", end="2026-12-01")
    items = {(r[0], r[3], r[4]): r[5] for r in comp}
    assert items[("甲科技有限公司", "site_icp", "www.jia.example")] == "met"
    assert items[("甲科技有限公司", "site_approval", "www.jia.example")] == "missing"  # news
    assert items[("甲科技有限公司", "psb_filing", "")] == "missing"
    report, _p, log = ask(s, "audit_log", start="2025-01-01", action="allocation.")
    stored = s.scalars(
        select(AuditLog.action).where(AuditLog.action.startswith("allocation."))
    ).all()
    assert len(log) == len(stored) == 3  # two allocations, one ended (乙's exit)
    assert all(a.startswith("allocation.") for a in col(report, log, "action"))


def test_the_sites_rules_raise_and_resolve_findings(history):
    s, site = history["s"], history["site"]
    kinds = {f.kind for f in s.scalars(select(Finding).where(Finding.status == "open"))}
    # A news forum without approval: clause 3 (the ICP number came on 1 Mar).
    assert kinds == {FindingKind.SITE_NO_APPROVAL}
    other = sites.add_site(
        s, history["jia"], {"name": "x", "domain": "x.jia.example", "category": "general",
                            "icp_number": "京ICP备1号", "addresses": ["198.18.1.20"]},
        actor="test",
    )  # fmt: skip
    shared = s.scalars(
        select(Finding).where(Finding.kind == FindingKind.SITE_INTERACTIVE_SHARED)
    ).all()
    assert [(f.status, f.prefix) for f in shared] == [("open", "198.18.1.20")]
    sites.close_site(s, other.id, "moved away", actor="test")
    assert shared[0].status == "resolved"
    with pytest.raises(ValidationError) as exc:  # not the customer's address
        sites.add_site(
            s, history["jia"], {"name": "y", "domain": "y.example", "category": "general",
                                "addresses": ["198.18.2.5"]}, actor="test",
        )  # fmt: skip
    assert exc.value.field == "addresses[0]"
    with pytest.raises(ValidationError) as exc:
        sites.update_site(s, site.id, {"category": "gambling"}, actor="test")
    assert exc.value.field == "category"


@pytest.mark.parametrize(
    ("asked", "field"),
    [
        ({"start": "2026-05-01", "end": "2026-04-01"}, "to"),
        ({"start": "1990-01-01", "end": "2026-04-01"}, "from"),
        ({"start": "2010-01-01", "end": "2026-04-01"}, "to"),  # sixteen years
        ({"start": "2026-13-01"}, "from"),
        ({"deadline_days": "0"}, "deadline"),
    ],
)
def test_bad_periods_are_refused_naming_the_field(history, asked, field):
    with pytest.raises(ValidationError) as exc:
        prepare(history["s"], "ip_filing_changes", EVERYONE, zone=ZONE, **asked)
    assert exc.value.field == field


def test_other_bad_input_is_refused_naming_the_field(history):
    s = history["s"]
    with pytest.raises(ValidationError) as exc:
        prepare(s, "ip_filing", EVERYONE, zone=ZONE, at="2099-01-01")
    assert exc.value.field == "at"
    for name, asked, field in (
        ("nonsense", {}, "report"),
        ("ip_filing", {"customer": "nobody"}, "customer"),
        ("ip_filing", {"pool": "203.0.113.0/24"}, "pool"),
    ):
        with pytest.raises(NotFound) as exc:
            prepare(s, name, EVERYONE, zone=ZONE, **asked)
        assert exc.value.field == field
    with pytest.raises(ValidationError) as exc:
        files.check_format("docx")
    assert exc.value.field == "format"
    # A customer may pull its own IP filing, never another's, and not the clause 6 report.
    mine = Scope(history["jia"].id)
    with pytest.raises(NotFound):
        prepare(s, "ip_filing", mine, zone=ZONE, customer=history["yi"].id)
    with pytest.raises(NotFound):
        prepare(s, "clause6", mine, zone=ZONE)
    _r, _p, own = ask(s, "ip_filing", mine, at="2026-02-15")
    assert {r[-3] for r in own} == {"甲科技有限公司"}


def test_files_read_back_in_chinese_with_formulas_neutralised(history):
    s = history["s"]
    customers.update_customer(s, history["jia"], {"name": '=HYPERLINK("x")甲'}, actor="test")
    s.commit()
    report, params = prepare(s, "ip_filing", EVERYONE, zone=ZONE)
    made = {}
    for fmt in files.FORMATS:
        record = issued.issue(s, "ip_filing", params, fmt, "zh", actor="user:auditor")
        made[fmt] = bytes(record.content)
    s.commit()
    text = made["csv"].decode("utf-8")
    assert made["csv"].startswith(b"\xef\xbb\xbf")  # the BOM
    table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert table[0][:4] == ["起始地址", "终止地址", "地址数量", "地址段"]
    assert table[1][4] == '\'=HYPERLINK("x")甲'  # neutralised, not a formula
    book = load_workbook(io.BytesIO(made["xlsx"]))
    sheet = book.worksheets[0]
    assert sheet.cell(1, 1).value == "起始地址"
    assert sheet.cell(2, 5).value == '=HYPERLINK("x")甲' and sheet.cell(2, 5).data_type == "s"
    assert sheet.cell(2, 3).value == 256
    assert "ipam-anchor" in book.properties.keywords
    pdf = "".join(p.extract_text() for p in PdfReader(io.BytesIO(made["pdf"])).pages)
    # pypdf reads fpdf2's two-byte codes of the embedded CFF font with a NUL before each
    # character (poppler's pdftotext reads them clean); the characters themselves are right.
    flat = "".join(pdf.replace("\x00", "").split())
    assert "IP地址备案表" in flat and "起始地址" in flat and "198.18.1.8/29" in flat
    assert "王芳" in flat and "已转租" in flat
    # English on request.
    en = io.BytesIO()
    issued.export(s, report, params, "csv", "en", en, actor="test")
    assert en.getvalue().decode("utf-8-sig").startswith("first address,last address")


def test_issued_reports_are_kept_audited_and_anchored(history):
    s = history["s"]
    report, params = prepare(s, "sublessees", EVERYONE, zone=ZONE)
    record = issued.issue(s, "sublessees", params, "pdf", "zh", actor="user:auditor")
    s.commit()
    again = issued.get_issued(s, record.id)
    import hashlib

    assert hashlib.sha256(bytes(again.content)).hexdigest() == record.sha256
    entry = s.scalars(select(AuditLog).where(AuditLog.action == "report.issue")).all()[-1]
    assert entry.data["sha256"] == record.sha256 and entry.object_id == record.id
    seq, digest, where = anchor_of(bytes(record.content), s)
    assert (seq, digest) == (record.anchor_seq, record.anchor_hash) and "keywords" in where
    assert audit.anchor_problem(s, seq, digest) is None
    # A consistent rewrite: entry `seq` changed and every later hash and the head recomputed.
    # The chain verifies; the anchor the report carried out does not.
    _rewrite_from(s, seq)
    assert audit.verify(s).ok
    assert "rewritten" in audit.anchor_problem(s, seq, digest)
    # A customer sees only its own issued files.
    with pytest.raises(NotFound):
        issued.get_issued(s, record.id, Scope(history["jia"].id))


def _rewrite_from(s, seq: int) -> None:
    entries = s.scalars(select(AuditLog).where(AuditLog.seq >= seq).order_by(AuditLog.seq)).all()
    prev = entries[0].prev_hash
    for e in entries:
        data = dict(e.data)
        if e.seq == seq:
            data["forged"] = True
        digest = audit._digest(
            prev, e.seq, e.recorded_at, e.actor, e.action, e.object_type, e.object_id, data
        )
        s.execute(
            update(AuditLog)
            .where(AuditLog.id == e.id)
            .values(data=data, prev_hash=prev, hash=digest)
        )
        prev = digest
    from ipam.models import AuditHead

    s.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=prev))
    s.commit()


def test_standing_reports_are_issued_once_a_month(history):
    s = history["s"]
    config = {"IPAM_TIMEZONE": ZONE, "IPAM_STANDING_REPORT_FORMAT": "csv"}
    first = issued.issue_standing(s, config, now=t("2026-05-03T00:00:00"))
    s.commit()
    assert sorted(r.name for r in first) == sorted(issued.STANDING)
    changes = next(r for r in first if r.name == "ip_filing_changes")
    assert changes.params["start"] == "2026-03-31T16:00:00+00:00"  # April, Beijing time
    assert changes.params["end"] == "2026-04-30T16:00:00+00:00"
    assert issued.issue_standing(s, config, now=t("2026-05-04T00:00:00")) == []
    assert get_report("ip_filing").customers_may and not get_report("clause6").customers_may


def test_a_customer_changes_its_site_through_a_change_request(history):
    from ipam import change_requests

    s, jia, site = history["s"], history["jia"], history["site"]
    with pytest.raises(ValidationError) as exc:  # could never apply: refused on submission
        change_requests.submit(
            s, jia.id, "site", {"addresses": ["198.18.2.1"]}, reason="moved", actor="user:jia",
            target_id=site.id,
        )  # fmt: skip
    assert exc.value.field == "addresses[0]"
    with pytest.raises(NotFound):  # not 乙's site
        change_requests.submit(
            s, history["yi"].id, "site", {"icp_number": "x"}, reason="r", actor="u",
            target_id=site.id,
        )  # fmt: skip
    req = change_requests.submit(
        s, jia.id, "site", {"approval_ref": "新出审字〔2026〕1号"}, reason="approval granted",
        actor="user:jia", target_id=site.id,
    )  # fmt: skip
    assert site.approval_ref is None  # nothing changes until an engineer approves
    change_requests.approve(s, req.id, actor="user:engineer")
    s.commit()
    assert site.approval_ref == "新出审字〔2026〕1号"
    open_ = s.scalars(select(Finding).where(Finding.status == "open")).all()
    assert open_ == []  # the clause 3 finding resolved with it


def test_the_demo_filing_and_register_at_new_year(session):
    """Worked out by hand from ipam/demo.py: what was held at 2026-01-01 08:00 Beijing time."""
    from ipam import demo

    demo.seed(session, echo=lambda *_: None, abuse=False)
    session.commit()
    report, _p, got = ask(session, "ip_filing", at="2026-01-01 08:00")
    v4 = [(p, h) for p, h, f in zip(col(report, got, "prefix"), col(report, got, "holder"),
                                   col(report, got, "first"), strict=True) if "." in f]  # fmt: skip
    assert v4 == [
        ("198.18.7.0/24", "北京云帆网络科技有限公司"),
        ("198.19.0.0/24", "上海星河数据服务有限公司"),
        ("198.19.4.0/28", "杭州青木电子商务有限公司"),
        ("198.19.10.0/24", "深圳远航信息技术有限公司"),
        ("198.18.7.8/29", "北京蜂巢创意文化传媒有限公司"),  # sub-leased from 1 Jul 2025
    ]
    assert col(report, got, "status").count("allocated") == len(got) - 1
    report, _p, subs = ask(session, "sublessees", at="2026-01-01 08:00")
    assert col(report, subs, "sublessee") == ["北京蜂巢创意文化传媒有限公司"]
    assert col(report, subs, "customer") == ["北京云帆网络科技有限公司"]
    # Reclaimed on 15 Mar 2026: the sublease ended with the allocation, the block quarantined.
    report, _p, back = ask(session, "reclamation", start="2026-03-01", end="2026-04-30")
    assert [(e, p) for e, p in zip(col(report, back, "event"), col(report, back, "prefix"),
                                   strict=True)] == [
        ("reclaimed", "198.18.7.0/24"), ("quarantined", "198.18.7.0/24"),
        ("released", "198.18.7.0/24"),
    ]  # fmt: skip
