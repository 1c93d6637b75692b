"""The formats real senders use (issue 14), from their published specifications; the
samples are written here, not copied: XARF v4, X-ARF mails as senders write them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ipam.abuse import formats
from ipam.models import AbuseCategory

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def v4(**over) -> bytes:
    report = {
        "xarf_version": "4.2.0",
        "report_id": "5d0c8d3e-3a61-4a6f-9d3c-2f6d1c0b9a11",
        "timestamp": "2026-07-01T03:10:00Z",
        "first_seen": "2026-07-01T03:00:00+08:00",
        "reporter": {"org": "示例安全", "contact": "soc@cert.example", "domain": "cert.example"},
        "sender": {"org": "示例安全", "contact": "soc@cert.example", "domain": "cert.example"},
        "source_identifier": "198.18.7.9",
        "source_port": 40000,
        "category": "connection",
        "type": "login_attack",
        "evidence_source": "honeypot",
        "evidence": [{"content_type": "text/plain", "payload": "c3NoZCBmYWlsZWQ="}],
        "destination_ip": "203.0.113.10",
        "protocol": "tcp",
    }
    report.update(over)
    return json.dumps({k: v for k, v in report.items() if v is not None}).encode()


def test_xarf_v4_is_detected_and_read():
    raw = v4()
    assert formats.detect(raw) == "xarf-json"
    (rec,), rejected = formats.read(raw, NOW)
    assert rejected == []
    assert str(rec.block) == "198.18.7.9" and rec.category == AbuseCategory.ATTACK
    assert rec.event_at == datetime(2026, 6, 30, 19, 0, tzinfo=UTC)  # first_seen, in UTC
    assert rec.reporter == "soc@cert.example" and rec.details["evidence_items"] == 1


@pytest.mark.parametrize(
    ("category", "kind", "expected", "sender"),
    [
        ("messaging", "spam", AbuseCategory.SPAM, None),
        ("connection", "ddos", AbuseCategory.ATTACK, None),
        ("infrastructure", "botnet", AbuseCategory.MALWARE, None),
        ("copyright", "dmca", AbuseCategory.INFRINGEMENT, None),
        ("connection", "sip_flood", AbuseCategory.ATTACK, None),  # the family decides
        ("vulnerability", "open_service", AbuseCategory.OTHER, "open_service"),
    ],
)
def test_xarf_v4_types_and_categories_map_to_ours(category, kind, expected, sender):
    (rec,), _ = formats.read(v4(category=category, type=kind), NOW)
    assert rec.category == expected
    assert rec.details.get("sender_category") == sender


def test_xarf_v4_without_first_seen_takes_the_report_time_and_needs_an_address():
    (rec,), _ = formats.read(v4(first_seen=None), NOW)
    assert rec.event_at == datetime(2026, 7, 1, 3, 10, tzinfo=UTC)
    with pytest.raises(formats.FormatError) as err:
        formats.read(v4(source_identifier=None), NOW)
    assert err.value.field == "source_identifier"
    with pytest.raises(formats.FormatError) as err:
        formats.read(v4(xarf_version="5.0"), NOW)
    assert err.value.field == "xarf_version"


XARF_YAML = """---
Reported-From: reports@blocklist.example
Category: abuse
Report-Type: login-attack
Date: 2026-07-01T03:00:00+08:00
Source-Type: ipv4
Source: 198.18.7.9
Schema-URL: {schema}
"""


def xarf_mail(header: str = "X-ARF: YES", schema: str = "http://www.x-arf.org/x.json",
              signed: bool = False) -> bytes:  # fmt: skip
    inner = (
        'Content-Type: multipart/mixed; boundary="in"\n\n--in\nContent-Type: text/plain\n\n'
        "Dear abuse team, a login attack.\n--in\nContent-Type: text/plain; name=report.txt\n\n"
        + XARF_YAML.format(schema=schema)
        + "--in--\n"
    )
    if signed:
        inner = (
            'Content-Type: multipart/signed; protocol="application/pgp-signature"; '
            'micalg=pgp-sha256; boundary="sig"\n\n--sig\n' + inner + "--sig\n"
            "Content-Type: application/pgp-signature\n\n-----BEGIN PGP SIGNATURE-----\n"
            "iQEzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n--sig--\n"
        )
    head = (
        "From: reports@blocklist.example\nTo: abuse@provider.example\n"
        f"Subject: abuse report\nDate: Wed, 01 Jul 2026 03:05:00 +0800\n{header}\n"
        "MIME-Version: 1.0\n"
    )
    return (head + inner).encode()


@pytest.mark.parametrize(
    "raw",
    [
        xarf_mail(),
        xarf_mail(header="X-XARF: PLAIN"),
        xarf_mail(signed=True),
        xarf_mail(header="X-XARF: PLAIN", schema="http: //www.x-arf.org/x.json"),  # bad YAML
    ],
    ids=["x-arf-yes", "x-xarf-plain", "signed", "sloppy-yaml"],
)
def test_x_arf_mails_as_senders_write_them(raw):
    assert formats.detect(raw) == "xarf-mail"
    (rec,), _ = formats.read(raw, NOW)
    assert str(rec.block) == "198.18.7.9" and rec.category == AbuseCategory.ATTACK
    assert rec.event_at == datetime(2026, 6, 30, 19, 0, tzinfo=UTC)
