"""Signed attribution certificates: who held an address at an instant, verifiable offline.

The certificate is one JSON document in canonical form (sorted keys, no
spaces, UTF-8): {"certificate": {...}, "signature": {"alg": "Ed25519",
"key_id": ..., "value": ...}}. The signature covers the canonical bytes of
"certificate", which carries the answer (as attribution.py gives it, personal
data masked unless revealed), the audit chain's head at issue (the anchor)
and its serial. Any changed byte fails: the file must be exactly the
canonical form of what it says, and the signature must match it. The PDF is
the same certificate for people, with the JSON embedded as an attachment.

Keys (Ed25519, `cryptography`) live in the instance folder's keys/ (one
PEM pair per key id, "current" names the signing key) or come from
IPAM_SIGNING_KEY; rotating adds a key and keeps the old public keys, so old
certificates still verify.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from . import audit, privacy
from .attribution import attribution
from .db import utcnow
from .errors import ValidationError
from .listing import EVERYONE, Scope
from .models import IssuedReport

KIND = "ipam.attribution-certificate"
ATTACHMENT = "certificate.json"


def canonical(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _raw_public(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key) -> str:
    return hashlib.sha256(_raw_public(public_key)).hexdigest()[:16]


def _load_private(text: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            "is not an Ed25519 private key: {exc}", "IPAM_SIGNING_KEY", exc=exc
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValidationError("is not an Ed25519 private key", "IPAM_SIGNING_KEY")
    return key


def load_public(text: str | bytes, field_name: str = "key"):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = text.encode() if isinstance(text, str) else text
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise ValidationError("is not a PEM public key", field_name) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValidationError("is not an Ed25519 public key", field_name)
    return key


class Keyring:
    """The provider's signing keys: the current one signs, every one ever used verifies."""

    def __init__(self, directory, env_key: str | None = None):
        self.dir = Path(directory)
        self.env_key = env_key or None

    @classmethod
    def from_config(cls, config) -> Keyring:
        return cls(config["IPAM_KEYS_DIR"], config.get("IPAM_SIGNING_KEY") or None)

    def _write(self, name: str, data: bytes, mode: int) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)

    def _keep(self, private_key, *, store_private: bool) -> str:
        from cryptography.hazmat.primitives import serialization

        kid = key_id(private_key.public_key())
        pub = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._write(f"{kid}.pub", pub, 0o644)
        if store_private:
            pem = private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            self._write(f"{kid}.key", pem, 0o600)
        self._write("current", kid.encode(), 0o644)
        return kid

    def init(self) -> tuple[str, bool]:
        """(key id, created): the environment's key recorded, else one made once."""
        if self.env_key:
            return self._keep(_load_private(self.env_key), store_private=False), False
        current = self.current_id()
        if current is not None:
            return current, False
        return self.rotate(), True

    def rotate(self) -> str:
        """A new signing key; the old public keys stay for verifying."""
        if self.env_key:
            raise ValidationError(
                "the signing key comes from IPAM_SIGNING_KEY: rotate it there", "IPAM_SIGNING_KEY"
            )
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return self._keep(Ed25519PrivateKey.generate(), store_private=True)

    def current_id(self) -> str | None:
        if self.env_key:
            return key_id(_load_private(self.env_key).public_key())
        path = self.dir / "current"
        return path.read_text().strip() if path.exists() else None

    def signer(self):
        """(key id, private key) that signs now; a clear error until `ipam keys init`."""
        if self.env_key:
            key = _load_private(self.env_key)
            return key_id(key.public_key()), key
        kid = self.current_id()
        path = self.dir / f"{kid}.key" if kid else None
        if path is None or not path.exists():
            raise ValidationError(
                "no signing key: run `ipam keys init` (or set IPAM_SIGNING_KEY)", "key"
            )
        return kid, _load_private(path.read_text())

    def public(self, kid: str):
        if self.env_key:
            key = _load_private(self.env_key).public_key()
            if key_id(key) == kid:
                return key
        safe = "".join(ch for ch in kid if ch in "0123456789abcdef")[:16]
        path = self.dir / f"{safe}.pub"
        if not safe or not path.exists():
            return None
        return load_public(path.read_bytes())

    def ids(self) -> list[str]:
        found = sorted(p.stem for p in self.dir.glob("*.pub")) if self.dir.exists() else []
        current = self.current_id()
        if current and current not in found:
            found.append(current)
        return found


def _sign(keyring: Keyring, body: dict) -> dict:
    kid, key = keyring.signer()
    value = base64.b64encode(key.sign(canonical(body))).decode()
    return {"alg": "Ed25519", "key_id": kid, "value": value}


def issue(
    session: Session,
    address,
    at,
    *,
    actor: str,
    keyring: Keyring,
    issuer: str,
    scope: Scope = EVERYONE,
    reason=None,
) -> tuple[IssuedReport, bytes]:
    """Sign who held `address` at `at`; keep the JSON and record its hash in the audit chain.

    An address outside the provider's space gets no certificate; a customer user gets
    certificates for its own holdings only."""
    answer = attribution(session, address, at)
    if answer.status == "unmanaged":
        raise ValidationError(
            "lies outside the provider's address space: no certificate", "address"
        )
    if scope.customer_id is not None:
        if reason:
            raise ValidationError("customer users cannot reveal personal data", "reveal")
        if answer.customer is None or answer.customer.get("id") != scope.customer_id:
            from .errors import NotFound

            raise NotFound("no holding of yours at that address and time", "address")
    why = privacy.check_reveal(reason) if reason else None
    shown = answer if why else answer.masked()
    anchor = audit.head(session)
    now = utcnow()
    record = IssuedReport(
        name="certificate",
        params={"address": answer.address, "at": answer.at.isoformat()},
        format="json",
        language="zh",
        file_name="",
        content=b"",
        size=0,
        rows=1,
        sha256="",
        customer_id=(answer.customer or {}).get("id"),
        issued_by=actor,
        issued_at=now,
        anchor_seq=anchor[0],
        anchor_hash=anchor[1],
    )
    session.add(record)
    session.flush()
    body = {
        "type": KIND,
        "version": 1,
        "serial": record.id,
        "issuer": issuer,
        "issued_at": now.isoformat(),
        "issued_by": actor,
        "question": {"address": answer.address, "at": answer.at.isoformat()},
        "answer": shown.as_dict(),
        "personal_data": "revealed" if why else "masked",
        "anchor": {"seq": anchor[0], "hash": anchor[1]},
    }
    content = canonical({"certificate": body, "signature": _sign(keyring, body)})
    record.content = content
    record.size = len(content)
    record.sha256 = hashlib.sha256(content).hexdigest()
    record.file_name = f"certificate-{record.id}.json"
    session.flush()
    audit.record(
        session,
        actor,
        "certificate.issue",
        record,
        {
            "address": answer.address,
            "at": answer.at,
            "sha256": record.sha256,
            "key_id": body_key(content),
            "anchor": body["anchor"],
            **({"reveal_reason": why} if why else {}),
        },
    )
    return record, content


def body_key(content: bytes) -> str:
    return json.loads(content)["signature"]["key_id"]


@dataclass
class Verdict:
    ok: bool
    problems: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    certificate: dict | None = None
    json_bytes: bytes | None = None


def from_pdf(data: bytes) -> bytes:
    """The certificate JSON embedded in a certificate PDF."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        found = reader.attachments.get(ATTACHMENT)
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ValidationError("the PDF cannot be read: {exc}", "file", exc=exc) from None
    if not found:
        raise ValidationError("the PDF carries no {ATTACHMENT}", "file", ATTACHMENT=ATTACHMENT)
    return found[0]


def verify(
    data: bytes, keyring: Keyring, *, extra_key=None, session: Session | None = None
) -> Verdict:
    """Check a certificate (JSON or PDF): form, key, signature, and with a database, that its
    anchor is still in the audit log and that this ledger issued exactly these bytes."""
    v = Verdict(ok=False)
    is_pdf = data[:5] == b"%PDF-"
    try:
        raw = from_pdf(data) if is_pdf else data
    except ValidationError as exc:
        v.problems.append(exc.message)
        return v
    v.json_bytes = raw
    try:
        doc = json.loads(raw.decode("utf-8"))
        body, sig = doc["certificate"], doc["signature"]
        if not isinstance(body, dict) or body.get("type") != KIND:
            raise ValueError("not an attribution certificate")
        kid, alg, value = sig["key_id"], sig["alg"], base64.b64decode(sig["value"], validate=True)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        v.problems.append(f"not a certificate of this kind: {exc}")
        return v
    v.certificate = body
    if canonical(doc) != raw:
        v.problems.append("the file is not in the exact form it was issued in: it was altered")
    else:
        v.checks.append("form: canonical")
    key = extra_key if extra_key is not None and key_id(extra_key) == kid else keyring.public(kid)
    if alg != "Ed25519":
        v.problems.append(f"unknown signature algorithm {alg!r}")
    elif key is None:
        v.problems.append(f"the signing key {kid} is not known here")
    else:
        from cryptography.exceptions import InvalidSignature

        try:
            key.verify(value, canonical(body))
            v.checks.append(f"signature: valid (key {kid})")
        except InvalidSignature:
            v.problems.append(f"the signature does not match the certificate (key {kid})")
    if session is not None:
        anchor = body.get("anchor") or {}
        try:
            problem = audit.anchor_problem(session, int(anchor["seq"]), str(anchor["hash"]))
        except (KeyError, TypeError, ValueError):
            problem = "the certificate carries no audit anchor"
        if problem:
            v.problems.append(problem)
        else:
            v.checks.append(f"audit anchor: entry {anchor['seq']} is in the log")
        record = (
            session.get(IssuedReport, body.get("serial"))
            if isinstance(body.get("serial"), int)
            else None
        )
        digest = hashlib.sha256(data).hexdigest()
        json_digest = hashlib.sha256(raw).hexdigest()
        if record is None or record.name != "certificate":
            v.problems.append(f"this ledger issued no certificate {body.get('serial')!r}")
        elif record.sha256 != json_digest:
            v.problems.append("the certificate differs from the one this ledger issued")
        elif is_pdf and not _pdf_issued(session, record.id, digest):
            v.problems.append("the PDF differs from the one this ledger issued")
        else:
            v.checks.append(f"issued: certificate {record.id} of {record.issued_at.isoformat()}")
    v.ok = not v.problems
    return v


def _pdf_issued(session: Session, serial: int, digest: str) -> bool:
    from sqlalchemy import select

    found = session.scalars(
        select(IssuedReport.params).where(
            IssuedReport.name == "certificate",
            IssuedReport.format == "pdf",
            IssuedReport.sha256 == digest,
        )
    ).first()
    return found is not None and found.get("certificate") == serial


def render_pdf(
    session: Session, record: IssuedReport, *, actor: str, lang: str = "zh"
) -> IssuedReport:
    """The certificate for people: its statements, and the signed JSON attached. Kept like
    every issued file (once per certificate and language)."""
    from sqlalchemy import select

    existing = session.scalars(
        select(IssuedReport).where(
            IssuedReport.name == "certificate",
            IssuedReport.format == "pdf",
            IssuedReport.language == lang,
        )
    ).all()
    for item in existing:
        if item.params.get("certificate") == record.id:
            return item
    content = _pdf_bytes(record, lang)
    pdf = IssuedReport(
        name="certificate",
        params={**record.params, "certificate": record.id},
        format="pdf",
        language=lang,
        file_name=f"certificate-{record.id}-{lang}.pdf",
        content=content,
        size=len(content),
        rows=1,
        sha256=hashlib.sha256(content).hexdigest(),
        customer_id=record.customer_id,
        issued_by=actor,
        issued_at=utcnow(),
        anchor_seq=record.anchor_seq,
        anchor_hash=record.anchor_hash,
    )
    session.add(pdf)
    session.flush()
    audit.record(
        session,
        actor,
        "certificate.pdf",
        pdf,
        {"certificate": record.id, "sha256": pdf.sha256, "language": lang},
    )
    return pdf


TEXT = {
    "zh": {
        "title": "IP地址使用情况证明",
        "serial": "证书编号",
        "issuer": "签发方",
        "issued": "签发时间",
        "address": "地址",
        "at": "时间",
        "status": "状态",
        "pool": "地址池",
        "allocation": "分配",
        "customer": "客户",
        "sublease": "转租",
        "sublessee": "转租方",
        "contacts": "联系人",
        "anchor": "审计链锚点",
        "key": "签名密钥",
        "note": "本证明附有签名的 certificate.json；用 ipam certificate verify 验证。",
        "interval": "期间",
        "personal": "个人信息",
        "open": "至今",
        "masked": "已遮蔽（证件号、电话）",
        "revealed": "完整显示（已记录原因）",
    },
    "en": {
        "title": "Certificate of address attribution",
        "serial": "serial",
        "issuer": "issuer",
        "issued": "issued",
        "address": "address",
        "at": "instant",
        "status": "status",
        "pool": "pool",
        "allocation": "allocation",
        "customer": "customer",
        "sublease": "sublease",
        "sublessee": "sublessee",
        "contacts": "contacts",
        "anchor": "audit anchor",
        "key": "signing key",
        "note": "The signed certificate.json is attached; check it with ipam certificate verify.",
        "interval": "interval",
        "personal": "personal data",
        "open": "still held",
        "masked": "masked (ID numbers, phones)",
        "revealed": "in full (reason on record)",
    },
}


def _pdf_bytes(record: IssuedReport, lang: str) -> bytes:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from .reports.base import term
    from .reports.files import Heading, local, new_pdf

    doc = json.loads(record.content)
    body, sig = doc["certificate"], doc["signature"]
    t = TEXT[lang]
    zone = ZoneInfo(os.environ.get("IPAM_TIMEZONE") or "Asia/Shanghai")
    heading = Heading(
        title=t["title"],
        params=[],
        issued_at=record.issued_at,
        issued_by=record.issued_by,
        anchor_seq=record.anchor_seq,
        anchor_hash=record.anchor_hash,
        issued=True,
    )
    pdf = new_pdf(heading, lang, zone, orientation="P")
    answer = body["answer"]

    def when(text):
        if not text:
            return t["open"]
        return f"{local(datetime.fromisoformat(text), zone)} ({zone.key})"

    def line(key, value):
        pdf.multi_cell(0, 5, f"{t.get(key, key)}: {value}", new_x="LMARGIN", new_y="NEXT")

    pdf.set_font("cjk", size=10)
    line("serial", body["serial"])
    line("issuer", body["issuer"])
    line("issued", f"{when(body['issued_at'])}  {body['issued_by']}")
    line("address", body["question"]["address"])
    line("at", when(body["question"]["at"]))
    line("status", term(answer["status"], lang))
    if answer.get("pool"):
        line("pool", f"{answer['pool']['name']} {answer['pool']['prefix']}")
    for part in ("allocation", "sublease"):
        item = answer.get(part)
        if item:
            line(
                part,
                f"#{item['id']} {item['prefix']}  {t['interval']}: "
                f"{when(item.get('valid_from'))} – {when(item.get('valid_to'))}",
            )
    for part in ("customer", "sublessee"):
        item = answer.get(part)
        if item:
            who = item.get("name", "")
            code = item.get("uscc") or item.get("id_number") or ""
            line(part, f"{who} {code}".strip())
            people = item.get("contacts") or []
            if item.get("contact_person"):
                people = [{"name": item["contact_person"], "phone": item.get("phone")}]
            if people:
                line(
                    "contacts",
                    "; ".join(
                        " ".join(str(p.get(k)) for k in ("name", "phone", "email") if p.get(k))
                        for p in people
                    ),
                )
    line("personal", t[body.get("personal_data", "masked")])
    line("anchor", f"{body['anchor']['seq']} {body['anchor']['hash']}")
    line("key", f"{sig['alg']} {sig['key_id']}")
    pdf.ln(3)
    pdf.set_font("cjk", size=8)
    pdf.multi_cell(0, 4, t["note"], new_x="LMARGIN", new_y="NEXT")
    pdf.embed_file(
        basename=ATTACHMENT,
        bytes=record.content,
        desc="signed certificate",
        modification_date=record.issued_at,
        creation_date=record.issued_at,
    )
    return bytes(pdf.output())
