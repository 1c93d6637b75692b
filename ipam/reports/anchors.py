"""The audit chain's head a handed-out file carries, read back from the file itself.

Certificates carry it in their signed JSON; PDF and XLSX reports in their
document keywords ("ipam-anchor SEQ HASH"); any issued file (a CSV too) is
also found by its SHA-256 among the issued reports.
"""

from __future__ import annotations

import hashlib
import io
import json
import re

from sqlalchemy.orm import Session

from ..errors import ValidationError
from .issued import by_sha256

KEYWORDS = re.compile(r"ipam-anchor (\d+) ([0-9a-f]{64})")


def _keywords(data: bytes) -> str | None:
    if data[:5] == b"%PDF-":
        from pypdf import PdfReader

        try:
            reader = PdfReader(io.BytesIO(data))
            if "certificate.json" in reader.attachments:
                return None
            meta = reader.metadata or {}
            return str(meta.get("/Keywords") or "")
        except Exception:  # noqa: BLE001 - any unreadable PDF is "no anchor inside"
            return None
    if data[:2] == b"PK":
        from openpyxl import load_workbook

        try:
            return load_workbook(io.BytesIO(data), read_only=True).properties.keywords or ""
        except Exception:  # noqa: BLE001 - not a workbook we can read
            return None
    return None


def anchor_of(data: bytes, session: Session | None = None) -> tuple[int, str, str]:
    """(seq, hash, where it was found) of the file's anchor; a clear error if it has none."""
    if data[:5] == b"%PDF-":
        from ..certificates import from_pdf

        try:
            data_json = from_pdf(data)
        except ValidationError:
            data_json = None
        if data_json is not None:
            data = data_json
    text = data.lstrip()[:1]
    if text == b"{":
        try:
            doc = json.loads(data)
            anchor = doc["certificate"]["anchor"]
            return int(anchor["seq"]), str(anchor["hash"]), "the certificate"
        except (ValueError, KeyError, TypeError):
            pass
    found = KEYWORDS.search(_keywords(data) or "")
    if found:
        return int(found.group(1)), found.group(2), "the file's keywords"
    if session is not None:
        record = by_sha256(session, hashlib.sha256(data).hexdigest())
        if record is not None:
            return record.anchor_seq, record.anchor_hash, f"issued report {record.id}"
    raise ValidationError("carries no audit anchor and is not a file this ledger issued", "anchor")
