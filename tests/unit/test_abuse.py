"""The abuse desk's intake: formats, attribution at the event's time, cases, rejects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ipam import demo
from ipam.abuse import formats, ingest
from ipam.models import (
    AbuseCase,
    AbuseReport,
    AbuseReportCase,
    Customer,
    RejectedReport,
    Sublessee,
)
from tests.conftest import table_contents

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "abuse"
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.fixture
def ledger(session):
    demo.seed(session, echo=lambda *_: None, abuse=False)
    session.commit()
    return session


def holders(s, report) -> set[tuple[str, str | None]]:
    rows = s.execute(
        select(Customer.name, Sublessee.name)
        .select_from(AbuseReportCase)
        .join(AbuseCase, AbuseCase.id == AbuseReportCase.case_id)
        .join(Customer, Customer.id == AbuseCase.customer_id)
        .outerjoin(Sublessee, Sublessee.id == AbuseCase.sublessee_id)
        .where(AbuseReportCase.report_id == report.id)
    ).all()
    return {(c, sub) for c, sub in rows}


def test_arf_with_folded_headers_is_read():
    rec = formats.parse_arf(sample("arf-spam.eml"))
    assert str(rec.block) == "198.18.7.9"
    assert rec.event_at == datetime(2026, 1, 1, 2, 30, tzinfo=UTC)  # folded Arrival-Date
    assert rec.category.value == "spam"
    assert rec.details["reported-domain"] == "example.net"
    assert "spf=fail" in rec.details["authentication-results"]
    assert rec.details["original_subject"] == "Earn money"
    assert rec.description.startswith("This is an email abuse report")
    six = formats.parse_arf(sample("arf-virus-ipv6.eml"))
    assert (str(six.block), six.category.value) == ("2001:db8:100::1", "malware")


def test_xarf_generations_are_told_apart():
    assert formats.detect(sample("xarf-0.2.eml")) == "xarf-mail"
    assert formats.detect(sample("xarf-v4.json")) == "xarf-json"
    assert formats.detect(sample("arf-spam.eml")) == "arf"
    assert formats.detect(sample("batch.csv")) == "csv"
    assert formats.detect(sample("drop.txt")) == formats.detect(sample("drop.jsonl")) == "drop"
    old = formats.parse_xarf_mail(sample("xarf-0.2.eml"))
    assert (str(old.block), old.category.value, old.details["Port"]) == (
        "198.18.7.9",
        "attack",
        "22",
    )
    assert old.event_at == datetime(2026, 6, 30, 19, 0, tzinfo=UTC)
    new = formats.parse_xarf_json(sample("xarf-v4.json"))
    assert (str(new.block), new.category.value, new.reporter) == (
        "198.19.0.1",
        "malware",
        "cert@cert.example",
    )


def test_drop_feeds_in_both_forms():
    records, bad = formats.parse_drop(sample("drop.txt"), NOW)
    assert [(str(r.block), r.details["sblid"]) for r in records] == [
        ("198.19.0.0/26", "SBL600001"),
        ("198.18.128.0/17", "SBL600002"),
    ]
    assert records[0].event_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Last-Modified
    assert [(b.field, b.raw) for b in bad] == [("cidr", b"300.1.2.0/24 ; SBL600003\n")]
    records, bad = formats.parse_drop(sample("drop.jsonl"), NOW)
    assert [str(r.block) for r in records] == ["198.19.0.0/26", "198.18.7.0/25"]
    assert records[0].event_at == datetime.fromtimestamp(1796025600, UTC) and bad == []


BROKEN = {
    "no feedback part": (
        b"From: a@b.example\nMIME-Version: 1.0\nContent-Type: multipart/report; "
        b"report-type=feedback-report; boundary=x\n\n--x\nContent-Type: text/plain\n\nhi\n--x--\n",
        "message/feedback-report",
    ),
    "not a report": (b"From: a@b.example\nSubject: hi\n\nplain mail\n", "Content-Type"),
    # No Source-IP, and the reported message's Received chain names no outside host.
    "no source": (
        sample("arf-spam.eml")
        .replace(b"Source-IP: 198.18.7.9\n", b"")
        .replace(b"[198.18.7.9]", b"[192.168.0.9]"),
        "Source-IP",
    ),
    "bad date": (
        sample("arf-spam.eml").replace(
            b"Arrival-Date: Thu, 01 Jan 2026\n     10:30:00 +0800",
            b"Arrival-Date: sometime last week",
        ),
        "Arrival-Date",
    ),
    "unknown charset": (
        sample("arf-spam.eml").replace(b'charset="US-ASCII"', b'charset="x-klingon-9"'),
        "charset",
    ),
    "too big": (b"From: a@b.example\n\n" + b"x" * (formats.MAX_MESSAGE_BYTES + 1), "message"),
    "huge header": (b"X-Long: " + b"a" * (formats.MAX_HEADER_BYTES + 10) + b"\n\nbody", "message"),
    "deep nesting": (
        b"From: a@b.example\nMIME-Version: 1.0\n"
        + b"".join(
            f"Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n".encode() for i in range(40)
        )
        + b"Content-Type: text/plain\n\nx\n",
        "message",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_input_is_rejected_whole_with_its_reason(ledger, case):
    raw, fieldname = BROKEN[case]
    s = ledger
    before = {k: v for k, v in table_contents(s).items() if k not in ("rejected_report",)}
    result = ingest.ingest(s, raw, actor="test", kind="arf", now=NOW)
    s.commit()
    assert result.reports == [] and len(result.rejected) == 1
    row = s.execute(select(RejectedReport)).scalar_one()
    assert row.field == fieldname and row.raw == raw and row.reason
    after = {k: v for k, v in table_contents(s).items() if k not in ("rejected_report",)}
    assert after == before  # nothing but the rejected bytes was written


def test_attribution_uses_the_time_of_the_event(ledger):
    s = ledger
    old = ingest.ingest(s, sample("arf-spam.eml"), actor="test", now=NOW).reports[0]
    new = ingest.ingest(s, sample("xarf-0.2.eml"), actor="test", now=NOW).reports[0]
    s.commit()
    # 2026-01-01: 北京云帆's /24, sub-leased to 北京蜂巢; 2026-07-01: 上海星河's, to 李明.
    assert holders(s, old) == {("北京云帆网络科技有限公司", "北京蜂巢创意文化传媒有限公司")}
    assert holders(s, new) == {("上海星河数据服务有限公司", "李明")}
    assert (old.holding, new.holding) == ("held", "held")


def test_a_batch_keeps_good_rows_rejects_bad_ones_and_flags_unheld_space(ledger):
    s = ledger
    result = ingest.ingest(s, sample("batch.csv"), actor="test", now=NOW)
    s.commit()
    assert len(result.reports) == 5 and len(result.rejected) == 2
    assert sorted((r.field, r.reason.split(":")[0]) for r in result.rejected) == [
        ("address", "line 5"),
        ("time", "line 6"),
    ]
    # A category of the sender's own is kept as "other", the sender's word recorded.
    poetry = s.scalars(select(AbuseReport).where(AbuseReport.category == "other")).one()
    assert poetry.details["sender_category"] == "poetry"
    by_time = {r.event_at.date().isoformat(): r.holding for r in result.reports}
    assert by_time["2026-03-31"] == "quarantined"  # after the reclamation, in cool-down
    assert by_time["2026-10-31"] == "unallocated"  # 198.18.9.20 was never allocated
    # Again: recognised by its bytes, not doubled; the bad rows are rejected again.
    again = ingest.ingest(s, sample("batch.csv"), actor="test", now=NOW)
    assert again.reports == [] and again.duplicates == 5
    assert s.scalar(select(func.count()).select_from(AbuseReport)) == 5


def test_reports_join_a_case_within_the_window_and_a_prefix_reaches_every_holder(ledger):
    s = ledger
    ingest.ingest(s, sample("arf-spam.eml"), actor="test", now=NOW)
    second = sample("arf-spam.eml").replace(b"10:30:00 +0800", b"11:45:00 +0800")
    ingest.ingest(s, second, actor="test", now=NOW)
    cases = s.execute(select(AbuseCase)).scalars().all()
    assert [(c.report_count, c.category.value, c.state) for c in cases] == [(2, "spam", "open")]
    later = sample("arf-spam.eml").replace(
        b"Thu, 01 Jan 2026\n     10:30:00", b"Tue, 20 Jan 2026 10:30:00"
    )
    ingest.ingest(s, later, actor="test", now=NOW)  # 19 days on: outside the 7-day window
    assert s.scalar(select(func.count()).select_from(AbuseCase)) == 2
    feed = ingest.ingest(s, sample("drop.jsonl"), actor="test", now=NOW)
    s.commit()
    prefix_report = next(r for r in feed.reports if r.prefix == "198.18.7.0/25")
    # 198.18.7.0/25 in November 2026: 上海星河, with 198.18.7.9 sub-leased to 李明.
    assert holders(s, prefix_report) == {
        ("上海星河数据服务有限公司", None),
        ("上海星河数据服务有限公司", "李明"),
    }


def test_a_rejected_input_can_be_run_again(ledger):
    s = ledger
    raw = sample("xarf-v4.json")
    result = ingest.ingest(s, raw, actor="test", kind="csv", now=NOW)  # the wrong reader
    s.commit()
    (row,) = result.rejected
    # Still the wrong reader: the same row, its reason updated, no second copy of the bytes.
    again = ingest.retry_rejected(s, row.id, actor="test", kind="arf")
    s.commit()
    assert again.rejected == [row] and row.field == "Content-Type" and row.status == "rejected"
    assert s.scalar(select(func.count()).select_from(RejectedReport)) == 1
    done = ingest.retry_rejected(s, row.id, actor="test", kind="xarf-json")
    s.commit()
    assert row.status == "accepted" and row.report_id == done.reports[0].id
    assert holders(s, done.reports[0]) == {("上海星河数据服务有限公司", None)}


def test_case_lifecycle_and_the_ladder_to_termination(ledger):
    from ipam.abuse import cases
    from ipam.errors import StateConflict, ValidationError
    from ipam.models import AbuseCaseEvent, Allocation, CustomerStatus, Quarantine, Sanction

    s = ledger
    later = NOW.replace(year=2026, month=11, day=29)
    raw = sample("xarf-v4.json")  # 198.19.0.1 of 上海星河, malware
    ingest.ingest(s, raw, actor="test", now=later)
    (case,) = s.execute(select(AbuseCase)).scalars()
    with pytest.raises(ValidationError):
        cases.transition(s, case.id, "resolve", actor="user:engineer")  # needs a comment
    cases.transition(s, case.id, "notify", actor="user:engineer")
    with pytest.raises(StateConflict):
        cases.transition(s, case.id, "notify", actor="user:engineer")
    cases.customer_answer(s, case.id, "answered", "host cleaned, C2 removed", actor="user:xinghe")
    assert (case.state, case.customer_status) == ("acknowledged", "answered")
    assert cases.overdue(s, now=case.deadline + timedelta(hours=1)) == []
    xinghe = case.customer_id
    steps = []
    for n in range(4):
        ingest.ingest(
            s, raw.replace(b"C2 beacon", f"C2 beacon {n}".encode()), actor="test", now=later
        )
        open_case = (
            s.execute(
                select(AbuseCase).where(AbuseCase.state != "resolved").order_by(AbuseCase.id.desc())
            )
            .scalars()
            .first()
        )
        sanction = cases.propose_sanction(s, open_case.id, f"repeat {n}", actor="user:engineer")
        if sanction.kind.value != "warning":
            assert sanction.status == "proposed"  # waits for a person
            with pytest.raises(ValidationError):
                cases.confirm_sanction(s, sanction.id, actor="scheduler:host")
            cases.confirm_sanction(s, sanction.id, actor="user:engineer")
        steps.append((sanction.kind.value, sanction.status))
        cases.transition(s, open_case.id, "resolve", actor="user:engineer", comment="sanctioned")
        s.commit()
    assert steps == [
        ("warning", "confirmed"),
        ("suspension", "confirmed"),
        ("reclamation", "confirmed"),
        ("termination", "confirmed"),
    ]
    customer = s.get(Customer, xinghe)
    assert customer.status == CustomerStatus.EXITED
    held = s.execute(
        select(Allocation).where(Allocation.customer_id == xinghe, Allocation.valid_to.is_(None))
    ).all()
    assert held == []
    assert (
        s.scalar(
            select(func.count()).select_from(Quarantine).where(Quarantine.released_at.is_(None))
        )
        >= 3
    )
    assert s.scalar(select(func.count()).select_from(Sanction)) == 4
    events = (
        s.execute(
            select(AbuseCaseEvent.action)
            .where(AbuseCaseEvent.case_id == case.id)
            .order_by(AbuseCaseEvent.id)
        )
        .scalars()
        .all()
    )
    assert events[:3] == ["notify", "customer_answered", "escalate"]


def test_the_notification_reaches_the_abuse_contact_of_the_holder_then(ledger, smtp):
    import email
    import smtplib

    from ipam.abuse import notify

    inbox, port = smtp
    s = ledger
    ingest.ingest(s, sample("arf-spam.eml"), actor="test", now=NOW)
    (case,) = s.execute(select(AbuseCase)).scalars()

    def send(msg):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as conn:
            conn.send_message(msg)

    notify.notify(
        s,
        case.id,
        actor="user:engineer",
        sender="abuse@provider.example",
        send=send,
        with_sublessee=True,
    )
    s.commit()
    assert case.state == "notified"
    ((rcpts, content),) = inbox.messages
    # 北京云帆's abuse contact, and 北京蜂巢 (the sublessee of 198.18.7.9 on 2026-01-01).
    assert rcpts == ["abuse@yunfan.example", "ops@fengchao.example"]
    mail = email.message_from_bytes(content, policy=email.policy.default)
    assert mail["Subject"] == f"[abuse case {case.id}] spam from 198.18.7.9"
    body = mail.get_content()
    assert "2026-01-01 10:30 (Asia/Shanghai) 198.18.7.9 spam (arf" in body and "北京蜂巢" in body
    assert body.index("滥用案件") < body.index("Abuse case")  # Chinese first, then English
