"""CSV import of pools and customers, row by row through the normal operations.

Allocations, the imports that run to hundreds of thousands of rows, go through
ipam/bulk.py: checked whole, then written in short chunks.

Each row runs in a savepoint: a bad row is reported (line, field, reason) and
leaves nothing behind; the caller decides whether the good rows are committed.
Rows are streamed, so a large file is never held whole.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from sqlalchemy.orm import Session

from .customers import add_customer
from .errors import IpamError
from .pools import add_pool

COLUMNS = {
    "pools": ({"prefix", "name"}, {"parent", "description"}),
    "customers": (
        {"name", "uscc", "kind"},
        {
            "isp_licence_number",
            "isp_licence_scope",
            "isp_licence_expires",
            "icp_number",
            "connected_on",
            "psb_filing_number",
            "psb_filed_on",
            "contact_name",
            "contact_phone",
            "contact_email",
            "contact_role",
        },
    ),
}


@dataclass
class RowError:
    row: int  # line number in the file; the header is line 1
    field: str
    message: str


@dataclass
class ImportReport:
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)


def _pool_row(session, row, actor):
    add_pool(
        session,
        row["prefix"],
        row["name"],
        parent=row.get("parent") or None,
        description=row.get("description") or "",
        actor=actor,
    )


def _customer_row(session, row, actor):
    data = {k: v for k, v in row.items() if v and not k.startswith("contact_")}
    if row.get("contact_name"):
        contact = {
            "name": row["contact_name"],
            "phone": row.get("contact_phone"),
            "email": row.get("contact_email"),
            "role": row.get("contact_role"),
        }
        data["contacts"] = [{k: v for k, v in contact.items() if v}]
    add_customer(session, data, actor=actor)


HANDLERS = {"pools": _pool_row, "customers": _customer_row}


def import_csv(
    session: Session,
    kind: str,
    stream: IO[str],
    *,
    actor: str,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import rows of `kind` from a CSV stream with a header line; returns the report."""
    report = ImportReport()
    reader = csv.DictReader(stream)
    required, optional = COLUMNS[kind]
    header = {h.strip() for h in (reader.fieldnames or [])}
    missing = required - header
    unknown = header - required - optional
    if missing or unknown:
        if missing:
            report.errors.append(RowError(1, sorted(missing)[0], "column is missing"))
        for name in sorted(unknown):
            report.errors.append(RowError(1, name, "is not a column of a " + kind + " file"))
        return report
    handler = HANDLERS[kind]
    for row in reader:
        line = reader.line_num
        clean = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        try:
            with session.begin_nested():
                handler(session, clean, actor)
            report.imported += 1
        except IpamError as exc:
            report.errors.append(RowError(line, exc.field or "-", exc.message))
        if progress:
            progress(1)
    return report
