"""The formats real senders use (issue 14), from their published specifications; the
samples are written here, not copied: XARF v4, X-ARF mails as senders write them."""

from __future__ import annotations

import io
import json
import zipfile
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


REPORTED = (
    "Received: from mx1.reporter.example (mx1.reporter.example [10.1.2.3])\n"
    "\tby store.reporter.example with ESMTP; Wed, 01 Jul 2026 03:00:02 +0800\n"
    "Received: from sender.customer.example (sender.customer.example [198.18.7.9])\n"
    "\tby mx1.reporter.example with ESMTP id 1; Wed, 01 Jul 2026 03:00:00 +0800\n"
    "From: promo@customer.example\nTo: someone@reporter.example\nSubject: Cheap loans\n"
    "Date: Wed, 01 Jul 2026 02:59:00 +0800\n\nbuy now\n"
)


def arf(with_source_ip: bool) -> bytes:
    fields = "Feedback-Type: abuse\nUser-Agent: ReporterFBL/2.0\nVersion: 1\n"
    fields += "Arrival-Date: Wed, 01 Jul 2026 03:00:00 +0800\n"
    if with_source_ip:
        fields += "Source-IP: 198.18.7.9\n"
    return (
        "From: fbl@reporter.example\nTo: abuse@provider.example\nSubject: FW: complaint\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="r"\n\n'
        "--r\nContent-Type: text/plain\n\nA complaint about mail from your network.\n"
        "--r\nContent-Type: message/feedback-report\n\n" + fields + "\n"
        "--r\nContent-Type: message/rfc822\n\n" + REPORTED + "--r--\n"
    ).encode()


def test_arf_without_source_ip_finds_the_sender_in_the_received_chain():
    (rec,), _ = formats.read(arf(with_source_ip=False), NOW)
    # The newest hop is the reporter's own (10.1.2.3); the first outside is the sender.
    assert str(rec.block) == "198.18.7.9" and rec.details["source-ip-from"] == "Received"
    (same,), _ = formats.read(arf(with_source_ip=True), NOW)
    assert str(same.block) == "198.18.7.9" and "source-ip-from" not in same.details


def test_arf_without_any_address_says_what_is_missing():
    raw = arf(with_source_ip=False).replace(b"[198.18.7.9]", b"[192.168.1.5]")
    with pytest.raises(formats.FormatError) as err:
        formats.read(raw, NOW)
    assert err.value.field == "Source-IP"


def test_a_complaint_forwarded_as_multipart_mixed_is_read():
    raw = (
        "From: junkmail@mailbox.example\nTo: abuse@provider.example\nSubject: complaint\n"
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="m"\n\n'
        "--m\nContent-Type: text/plain\n\nThis message was reported as junk by a user.\n"
        "--m\nContent-Type: message/rfc822\n\n" + REPORTED + "--m--\n"
    ).encode()
    assert formats.detect(raw) == "arf"
    (rec,), _ = formats.read(raw, NOW)
    assert str(rec.block) == "198.18.7.9" and rec.category == AbuseCategory.SPAM
    assert rec.event_at == datetime(2026, 6, 30, 19, 0, 2, tzinfo=UTC)  # the reporter's receipt
    assert rec.details["arf_variant"] == "multipart/mixed"


def test_an_rfc_6591_auth_failure_report_is_kept_as_other():
    raw = arf(with_source_ip=True).replace(
        b"Feedback-Type: abuse", b"Feedback-Type: auth-failure\nAuth-Failure: dkim"
    )
    (rec,), _ = formats.read(raw, NOW)
    assert rec.category == AbuseCategory.OTHER and rec.details["feedback-type"] == "auth-failure"


SHADOW_SCAN = (
    b'"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city"\n'
    b'"2026-07-01 03:00:00","198.18.7.9","tcp",22,"h.example","ssh",64500,"CN","BJ",""\n'
    b'"2026-07-01 03:05:00","198.18.7.10","tcp",22,,"ssh",64500,"CN","BJ",""\n'
    b'"2026-07-01 03:06:00","not-an-ip","tcp",22,,"ssh",64500,"CN","BJ",""\n'
)
SHADOW_DRONE = (
    b"timestamp,ip,port,asn,geo,region,city,hostname,type,infection,url\n"
    b"2026-07-02 10:00:00,198.19.0.1,443,64500,CN,SH,,,tcp,avalanche-andromeda,\n"
)


def test_a_shadowserver_report_csv_is_detected_and_read_row_by_row():
    assert formats.detect(SHADOW_SCAN) == "shadowserver"
    records, rejected = formats.read(SHADOW_SCAN, NOW)
    assert [str(r.block) for r in records] == ["198.18.7.9", "198.18.7.10"]
    assert records[0].event_at == datetime(2026, 7, 1, 3, 0, tzinfo=UTC)  # UTC, as documented
    assert records[0].category == AbuseCategory.OTHER  # an exposed service, kept as such
    assert records[0].raw.startswith(b'"timestamp","ip"')  # each row stands on its own
    assert [(r.field, str(r.reason).split(":")[0]) for r in rejected] == [("ip", "line 4")]
    (drone,), _ = formats.read(SHADOW_DRONE, NOW)
    assert drone.category == AbuseCategory.MALWARE and drone.details["infection"]


def _zip(files: dict[str, bytes], level=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=level) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def _mail_with(attachment: bytes, name: str) -> bytes:
    import base64

    body = base64.encodebytes(attachment).decode()
    return (
        "From: autoreports@shadowserver.example\nTo: abuse@provider.example\n"
        "Subject: [Shadowserver] daily report\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="z"\n\n--z\nContent-Type: text/plain\n\n'
        "Attached are your reports.\n--z\n"
        f'Content-Type: application/zip; name="{name}"\n'
        f'Content-Disposition: attachment; filename="{name}"\n'
        "Content-Transfer-Encoding: base64\n\n" + body + "--z--\n"
    ).encode()


def test_shadowserver_reports_zipped_in_a_mail_are_unpacked_under_caps():
    mail = _mail_with(
        _zip({"2026-07-01-scan_ssh-asn64500.csv": SHADOW_SCAN,
              "2026-07-02-botnet_drone-asn64500.csv": SHADOW_DRONE}),
        "reports.zip",
    )  # fmt: skip
    assert formats.detect(mail) == "arf"  # a mail; its attachments decide
    records, rejected = formats.read(mail, NOW)
    assert len(records) == 3 and len(rejected) == 1
    assert {r.details["report_type"] for r in records} == {"scan_ssh", "botnet_drone"}
    # A zip bomb (a large member that compresses far beyond the allowed ratio) is refused.
    bomb = _mail_with(_zip({"2026-07-01-scan_ssh-x.csv": SHADOW_SCAN + b"0" * (8 << 20)}), "b.zip")
    with pytest.raises(formats.FormatError) as err:
        formats.read(bomb, NOW)
    assert err.value.field == "attachment" and "ratio" in err.value.message
    many = _mail_with(_zip({f"{i}.csv": SHADOW_SCAN for i in range(20)}), "many.zip")
    with pytest.raises(formats.FormatError) as err:
        formats.read(many, NOW)
    assert "more than" in err.value.message


def test_asn_drop_entries_are_refused_with_a_clear_reason():
    raw = (
        b'{"type":"metadata","timestamp":1782864000,"size":2}\n'
        b'{"cidr":"198.18.7.0/24","sblid":"SBL600001","rir":"apnic"}\n'
        b'{"asn":64500,"rir":"apnic","domain":"bad.example","cc":"CN","asname":"BAD-AS"}\n'
    )
    records, rejected = formats.read(raw, NOW, "drop")
    assert [str(r.block) for r in records] == ["198.18.7.0/24"]
    assert [(r.field, r.reason) for r in rejected] == [
        ("cidr", "an ASN-DROP entry (AS64500) names no addresses")
    ]
