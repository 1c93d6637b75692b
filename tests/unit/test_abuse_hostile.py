"""Hostile complaint inputs (issue 14): each is rejected with its field and reason, stored
byte for byte in the rejected store, nothing else changes, and no traceback escapes."""

from __future__ import annotations

import resource
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from ipam import demo
from ipam.abuse import formats, ingest
from ipam.models import RejectedReport
from tests.conftest import table_contents

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _deep_mime(levels: int) -> bytes:
    head = b"From: a@b.example\nMIME-Version: 1.0\n"
    body = b"".join(
        f"Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n".encode() for i in range(levels)
    )
    return head + body + b"Content-Type: text/plain\n\nx\n"


def _alias_bomb() -> bytes:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i, name in enumerate("bcdefghij"):
        prev = "abcdefghij"[i]
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    yaml = "\n".join(lines) + "\nSource: 198.18.7.9\nDate: 2026-01-01T00:00:00Z\n"
    return (
        b"From: abuse@cert.example\nX-ARF: YES\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=xx\n\n--xx\nContent-Type: text/plain\n\nreport\n"
        b"--xx\nContent-Type: text/plain\n\n" + yaml.encode() + b"\n--xx--\n"
    )


HOSTILE = {
    # name: (bytes, kind, the field the rejection names)
    "MIME nested 1,000 deep": (_deep_mime(1000), "arf", "message"),
    "NUL in an address": (
        b"address,time,category\n198.18.7.\x009,2026-01-01T00:00:00Z,spam\n",
        "csv",
        "address",
    ),
    "a CSV field over 128 KiB": (
        b'address,time,category,description\n198.18.7.9,2026-01-01T00:00:00Z,spam,"'
        + b"x" * (200 << 10)
        + b'"\n',
        "csv",
        "csv",
    ),
    "JSON nested 200,000 deep": (b"[" * 200_000 + b"]" * 200_000, "xarf-json", "report"),
    "XARF with Reporter as a string": (
        b'{"Version":"0.2","Reporter":"someone","Report":{"SourceIp":"198.18.7.9",'
        b'"Date":"2026-01-01T00:00:00Z","ReportType":"spam"}}',
        "xarf-json",
        None,  # accepted: the reporter is only a name
    ),
    "DROP timestamp abc": (
        b'{"type":"metadata","timestamp":"abc"}\n{"cidr":"198.18.7.0/24","sblid":"SBL1"}\n',
        "drop",
        "timestamp",
    ),
    "DROP timestamp 1e20": (
        b'{"type":"metadata","timestamp":1e20}\n{"cidr":"198.18.7.0/24","sblid":"SBL1"}\n',
        "drop",
        "timestamp",
    ),
    "YAML alias bomb": (_alias_bomb(), "xarf-mail", "report"),
}


@pytest.fixture
def ledger(session):
    demo.seed(session, echo=lambda *_: None, abuse=False)
    session.commit()
    return session


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_input_is_rejected_with_its_reason_and_changes_nothing_else(ledger, case):
    raw, kind, field = HOSTILE[case]
    s = ledger
    keep = ("rejected_report", "abuse_report", "abuse_case", "abuse_report_case",
            "abuse_case_event", "audit_log", "audit_head", "outbox_message")  # fmt: skip
    before = {k: v for k, v in table_contents(s).items() if k not in keep}
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = ingest.ingest(s, raw, actor="test", kind=kind, now=NOW)
    s.commit()
    elapsed = time.perf_counter() - started
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert elapsed < 10 and grown_kib < 200 * 1024, (elapsed, grown_kib)  # bounded, not 5.6 GB
    rows = s.scalars(select(RejectedReport)).all()
    if field is None:
        assert result.reports and not rows
        return
    assert rows, f"{case}: nothing in the rejected store"
    assert {r.field for r in rows} == {field}, [(r.field, r.reason) for r in rows]
    assert all(r.reason for r in rows)
    assert b"".join(sorted(r.raw for r in rows)) in raw or any(r.raw == raw for r in rows)
    after = {k: v for k, v in table_contents(s).items() if k not in keep}
    assert after == before


def test_parsers_never_raise_anything_but_a_format_error():
    """The parsers on their own: a FormatError, or records and rejections; nothing else."""
    for case, (raw, kind, _field) in sorted(HOSTILE.items()):
        try:
            formats.read(raw, NOW, kind)
        except formats.FormatError:
            pass
        except Exception as exc:  # noqa: BLE001 - the finding
            pytest.fail(f"{case}: {type(exc).__name__}: {exc}")


def test_a_poison_mail_between_two_good_ones_does_not_block_the_maildir(ledger, tmp_path):
    from ipam.db import chunk_done

    samples = __import__("pathlib").Path(__file__).resolve().parents[1] / "samples" / "abuse"
    box = tmp_path / "abuse"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.a").write_bytes((samples / "arf-spam.eml").read_bytes())
    poison = _deep_mime(1000)
    (box / "new" / "2.b").write_bytes(poison)
    (box / "new" / "3.c").write_bytes((samples / "xarf-0.2.eml").read_bytes())
    s = ledger
    result = ingest.poll_maildir(s, box, actor="scheduler:maildir", chunk_done=chunk_done(s))
    assert (result.stored, result.rejected_count) == (2, 1)
    assert list((box / "new").iterdir()) == []  # every mail filed, the poison one too
    assert s.scalars(select(RejectedReport.raw)).one() == poison


def test_an_unexpected_parser_failure_rejects_that_input_only(ledger, monkeypatch):
    s = ledger
    real = formats.read

    def flaky(raw, received_at, kind=None, **kw):
        if b"poison" in raw:
            raise KeyError("a parser bug")
        return real(raw, received_at, kind, **kw)

    monkeypatch.setattr(formats, "read", flaky)
    good = b"address,time,category\n198.18.7.9,2026-01-01T00:00:00Z,spam\n"
    result = ingest.ingest_many(s, [good, b"poison\n", good.replace(b"01T", b"02T")],
                                actor="test", kind="csv", now=NOW)  # fmt: skip
    s.commit()
    assert len(result.reports) == 2 and len(result.rejected) == 1
    row = s.scalars(select(RejectedReport)).one()
    assert row.raw == b"poison\n" and row.field == "input" and "KeyError" in row.reason


def _csv(*lines: str) -> bytes:
    return ("address,time,category,description\n" + "\n".join(lines) + "\n").encode()


def test_sanity_at_the_door(ledger):
    s = ledger
    cases_before = len(table_contents(s)["abuse_case"])
    result = ingest.ingest(
        s,
        _csv(
            "0.0.0.0/0,2026-01-03T00:00:00Z,spam,everything",
            "198.18.0.0/15,2026-01-03T00:00:00Z,spam,too broad",
            "2001:db8::/31,2026-01-03T00:00:00Z,spam,too broad",
            "198.18.7.9,2100-01-01T00:00:00Z,spam,from the future",
            "198.18.7.9,2026-01-04T00:00:00,spam,no zone",
            "198.18.7.0/24,2026-01-05T00:00:00Z,spam,a /24 is fine",
        ),
        actor="test",
        kind="csv",
        now=NOW,
    )
    s.commit()
    assert len(result.reports) == 1 and result.reports[0].prefix == "198.18.7.0/24"
    why = sorted((r.field, r.reason) for r in result.rejected)
    assert [f for f, _ in why] == ["address", "address", "address", "time", "time"]
    assert any("broader than /16" in r for _, r in why) and any(
        "in the future" in r for _, r in why
    )
    assert any("no time zone" in r for _, r in why)
    assert len(table_contents(s)["abuse_case"]) <= cases_before + 2  # not one per holding
    # DROP feeds name whole prefixes: allowed broad, never /0.
    drop = ingest.ingest(s, b"198.18.0.0/15 ; SBL1\n0.0.0.0/0 ; SBL2\n", actor="t",
                         kind="drop", now=NOW)  # fmt: skip
    assert [r.prefix for r in drop.reports] == ["198.18.0.0/15"]
    assert [r.field for r in drop.rejected] == ["address"]


def test_the_same_unreadable_input_keeps_one_row(ledger):
    s = ledger
    bad = b"address,when\n1,2\n"
    for _ in range(3):
        ingest.ingest(s, bad, actor="test", kind="csv", now=NOW)
        s.commit()
    assert len(s.scalars(select(RejectedReport).where(RejectedReport.raw == bad)).all()) == 1


def test_a_quoted_description_over_two_lines_is_one_record(ledger):
    s = ledger
    raw = _csv('198.18.7.9,2026-01-02T00:00:00Z,spam,"line one', 'line two"',
               "198.18.7.9,2026-01-02T01:00:00Z,spam,next")  # fmt: skip
    result = ingest.ingest(s, raw, actor="test", kind="csv", now=NOW)
    s.commit()
    assert result.rejected == [] and len(result.reports) == 2
    from ipam.models import AbuseReport

    first = s.scalars(select(AbuseReport).order_by(AbuseReport.event_at)).first()
    assert first.description == "line one\nline two"
