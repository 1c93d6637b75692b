"""Signed attribution certificates: issued, verified, tampered with, keys rotated."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ipam import allocation, certificates
from ipam.errors import NotFound, ValidationError
from ipam.listing import Scope
from tests import factories


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def ledger(session, tmp_path):
    pool = factories.pool(session, "198.18.0.0/16", "lab")
    jia = factories.customer(session, "甲科技有限公司", at=t("2025-12-01T00:00:00"))
    yi = factories.customer(session, "乙数据有限公司", at=t("2025-12-01T00:00:00"))
    allocation.allocate(
        session, pool, jia, prefix="198.18.1.0/24", actor="test", at=t("2026-01-01T00:00:00")
    )
    session.commit()
    ring = certificates.Keyring(tmp_path / "keys")
    ring.init()
    return session, ring, jia, yi


FEB = datetime(2026, 2, 1, tzinfo=UTC)


def issue(s, ring, address="198.18.1.9", at=FEB, **kw):
    record, content = certificates.issue(
        s, address, at, actor="user:auditor", keyring=ring, issuer="测试ISP", **kw
    )
    s.commit()
    return record, content


def test_a_certificate_verifies_and_states_the_holder(ledger):
    s, ring, jia, _yi = ledger
    record, content = issue(s, ring)
    verdict = certificates.verify(content, ring, session=s)
    assert verdict.ok, verdict.problems
    body = json.loads(content)["certificate"]
    assert body["answer"]["customer"]["name"] == "甲科技有限公司"
    assert body["answer"]["status"] == "allocated" and body["serial"] == record.id
    assert body["anchor"]["seq"] == record.anchor_seq
    assert body["answer"]["customer"]["contacts"][0]["phone"].count("*") == 4  # masked
    pdf = certificates.render_pdf(s, record, actor="user:auditor", lang="zh")
    s.commit()
    assert certificates.verify(bytes(pdf.content), ring, session=s).ok
    # Offline (no database): form and signature only.
    assert certificates.verify(content, ring).ok


def test_any_changed_byte_fails_and_says_what(ledger):
    s, ring, *_ = ledger
    _record, content = issue(s, ring)
    forged = content.replace("甲科技有限公司".encode(), "丙科技有限公司".encode())
    verdict = certificates.verify(forged, ring, session=s)
    assert not verdict.ok
    assert any("signature does not match" in p for p in verdict.problems)
    assert any("differs from the one this ledger issued" in p for p in verdict.problems)
    spaced = content.replace(b'"version":1', b'"version": 1')  # same content, other bytes
    assert "not in the exact form" in certificates.verify(spaced, ring).problems[0]
    for i in range(0, len(content), max(1, len(content) // 40)):  # a byte flipped anywhere
        flipped = content[:i] + bytes([content[i] ^ 0x01]) + content[i + 1 :]
        assert not certificates.verify(flipped, ring).ok, i
    assert "not a certificate" in certificates.verify(b"{}", ring).problems[0]


def test_a_tampered_pdf_fails(ledger):
    s, ring, *_ = ledger
    record, _content = issue(s, ring)
    pdf = bytes(certificates.render_pdf(s, record, actor="x", lang="en").content)
    s.commit()
    changed = pdf.replace(b"/Title", b"/Titel", 1)
    verdict = certificates.verify(changed, ring, session=s)
    assert not verdict.ok and "the PDF differs" in verdict.problems[-1]
    assert "cannot be read" in certificates.verify(b"%PDF-1.4 garbage", ring).problems[0]


def test_rotated_keys_still_verify_old_certificates(ledger, tmp_path):
    s, ring, *_ = ledger
    _r1, old = issue(s, ring)
    first = ring.current_id()
    second = ring.rotate()
    _r2, new = issue(s, ring)
    assert json.loads(new)["signature"]["key_id"] == second != first
    assert certificates.verify(old, ring, session=s).ok
    assert certificates.verify(new, ring, session=s).ok
    stranger = certificates.Keyring(tmp_path / "elsewhere")
    stranger.init()
    assert "is not known here" in certificates.verify(old, stranger).problems[0]
    # A key given on the command line (a third party checking offline).
    public = certificates.load_public((ring.dir / f"{first}.pub").read_bytes())
    assert certificates.verify(old, stranger, extra_key=public).ok


def test_the_key_can_come_from_the_environment(ledger, tmp_path):
    s, _ring, *_ = ledger
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    ring = certificates.Keyring(tmp_path / "env-keys", base64.b64encode(raw).decode())
    kid, created = ring.init()
    assert not created and not list((tmp_path / "env-keys").glob("*.key"))  # never on disk
    _r, content = issue(s, ring)
    assert certificates.verify(content, certificates.Keyring(tmp_path / "env-keys")).ok
    assert json.loads(content)["signature"]["key_id"] == kid
    with pytest.raises(ValidationError) as exc:
        certificates.Keyring(tmp_path / "x", "not a key").signer()
    assert exc.value.field == "IPAM_SIGNING_KEY"


def test_bad_requests_get_no_certificate(ledger, tmp_path):
    s, ring, jia, yi = ledger
    with pytest.raises(ValidationError) as exc:
        issue(s, ring, address="203.0.113.5")
    assert exc.value.field == "address"
    with pytest.raises(ValidationError) as exc:
        issue(s, ring, address="198.18.1.300")
    assert exc.value.field == "address"
    with pytest.raises(NotFound):  # 乙 asks about 甲's address
        issue(s, ring, scope=Scope(yi.id))
    assert issue(s, ring, scope=Scope(jia.id))[0].customer_id == jia.id
    with pytest.raises(ValidationError) as exc:
        issue(s, ring, reason="short")
    assert exc.value.field == "reason"
    s.rollback()
    with pytest.raises(ValidationError) as exc:
        issue(s, certificates.Keyring(tmp_path / "none"))
    assert exc.value.field == "key"
