"""A report as a file: CSV (UTF-8 with BOM, formulas neutralised), XLSX (openpyxl, write-only)
or PDF (fpdf2, the Chinese font embedded), written while its rows stream in.

Headings are in the report's language; dates and times are in the configured
zone, and the zone is named in the headings. A PDF holds at most
IPAM_REPORT_PDF_MAX_ROWS rows (a PDF of a million rows helps nobody and is
built in memory): past that the caller is told to narrow it or take CSV/XLSX.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from typing import BinaryIO
from zoneinfo import ZoneInfo

from ..errors import ValidationError
from .base import Column, Params, Report, term

FORMATS = ("csv", "xlsx", "pdf")
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "json": "application/json",
}
PDF_MAX_ROWS = int(os.environ.get("IPAM_REPORT_PDF_MAX_ROWS") or 5000)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def check_format(value) -> str:
    fmt = str(value or "").strip().lower()
    if fmt not in FORMATS:
        raise ValidationError(
            "{value!r} is not one of: {choices}", "format", value=value, choices=", ".join(FORMATS)
        )
    return fmt


@dataclass(frozen=True)
class Heading:
    """What a file says about itself: whose report, asked how, issued when, anchored where."""

    title: str
    params: list[tuple[str, str]]
    issued_at: datetime
    issued_by: str
    anchor_seq: int | None = None
    anchor_hash: str | None = None
    issued: bool = False  # False: a draft, kept nowhere (said so inside)

    @property
    def keywords(self) -> str:
        if not self.issued:
            return "ipam-draft"
        return f"ipam-anchor {self.anchor_seq} {self.anchor_hash}"


LABELS = {
    "zh": {
        "start": "起",
        "end": "止",
        "at": "时点",
        "customer_id": "客户",
        "pool_id": "地址池",
        "reveal": "显示完整个人信息",
        "deadline_days": "报备期限（天）",
        "zone": "时区",
        "actor": "操作人",
        "object_type": "对象类型",
        "action": "操作",
        "issued": "签发",
        "draft": "草稿（未签发、未留存）",
        "anchor": "审计链锚点",
        "rows": "行数",
        "page": "第 {n} 页",
        "serial": "报告编号",
    },
    "en": {
        "start": "from",
        "end": "to",
        "at": "as of",
        "customer_id": "customer",
        "pool_id": "pool",
        "reveal": "personal data in full",
        "deadline_days": "filing deadline",
        "zone": "time zone",
        "actor": "actor",
        "object_type": "object",
        "action": "action",
        "issued": "issued",
        "draft": "draft (not issued, not kept)",
        "anchor": "audit anchor",
        "rows": "rows",
        "page": "page {n}",
        "serial": "report number",
    },
}


def label(key: str, lang: str) -> str:
    return LABELS[lang].get(key, key)


def zone_name(zone: ZoneInfo, when: datetime) -> str:
    offset = when.astimezone(zone).strftime("%z")
    return f"{zone.key}, UTC{offset[:3]}:{offset[3:]}"


def local(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def param_lines(params: Params, lang: str, names: dict[str, str] | None = None) -> list:
    """The parameters as (label, value) lines, times in the report's zone."""
    zone = ZoneInfo(params.zone)
    out = []
    for key, value in params.as_dict().items():
        if key == "zone":
            continue
        if key in ("start", "end", "at"):
            value = local(datetime.fromisoformat(value), zone)
        elif names and key in names:
            value = names[key]
        out.append((label(key, lang), str(value)))
    out.append((label("zone", lang), zone_name(zone, datetime.now(zone))))
    return out


def headings(report: Report, lang: str, zone: ZoneInfo) -> list[str]:
    now = datetime.now(zone)
    out = []
    for c in report.columns:
        text = c.title(lang)
        if c.kind == "instant":
            text += f" ({zone_name(zone, now)})"
        out.append(text)
    return out


def cell(column: Column, value, lang: str, zone: ZoneInfo):
    """One value as the file shows it: text, a whole number, or a local date/time."""
    if value is None:
        return ""
    kind = column.kind
    if kind == "term":
        return term(value, lang)
    if kind == "instant" and isinstance(value, datetime):
        return local(value, zone)
    if kind == "date":
        if isinstance(value, datetime):
            return value.astimezone(zone).date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
    if kind == "int" and isinstance(value, int):
        return value if value < 2**53 else str(value)
    return str(value)


def neutral(value):
    """A text cell a spreadsheet must not run as a formula (CSV injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class Counter:
    """Counts the rows that passed through, for the record of an issued report."""

    def __init__(self, rows: Iterable):
        self.rows = rows
        self.n = 0

    def __iter__(self) -> Iterator:
        for row in self.rows:
            self.n += 1
            yield row


def csv_chunks(report: Report, params: Params, rows: Iterable, lang: str) -> Iterator[bytes]:
    """The CSV as byte chunks (streamed over HTTP as they are made)."""
    zone = ZoneInfo(params.zone)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(headings(report, lang, zone))
    yield codecs.BOM_UTF8 + buf.getvalue().encode()
    buf.seek(0)
    buf.truncate()
    cols = report.columns
    for n, row in enumerate(rows, 1):
        writer.writerow([neutral(cell(c, v, lang, zone)) for c, v in zip(cols, row, strict=True)])
        if n % 500 == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()


def write_csv(report, params, rows, lang, out: BinaryIO, heading: Heading) -> None:
    for chunk in csv_chunks(report, params, rows, lang):
        out.write(chunk)


def write_xlsx(report, params, rows, lang, out: BinaryIO, heading: Heading) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    zone = ZoneInfo(params.zone)
    wb = Workbook(write_only=True)
    wb.properties.title = heading.title
    wb.properties.keywords = heading.keywords
    wb.properties.creator = heading.issued_by
    sheet = wb.create_sheet(title=_sheet_title(report.title(lang)))
    sheet.append(headings(report, lang, zone))
    cols = report.columns
    for row in rows:
        cells = []
        for c, v in zip(cols, row, strict=True):
            value = cell(c, v, lang, zone)
            if isinstance(value, str) and value.startswith("="):
                text = WriteOnlyCell(sheet, value=None)
                text.value, text.data_type = value, "s"  # text, never a formula
                cells.append(text)
            else:
                cells.append(value)
        sheet.append(cells)
    about = wb.create_sheet(title="说明" if lang == "zh" else "About")
    for line in _about(heading, params, lang):
        about.append(list(line))
    wb.save(out)


def _sheet_title(text: str) -> str:
    for bad in "[]:*?/\\":
        text = text.replace(bad, " ")
    return text[:31]


def _about(heading: Heading, params: Params, lang: str) -> list[tuple[str, str]]:
    zone = ZoneInfo(params.zone)
    lines = [(heading.title, "")]
    lines += heading.params
    when = local(heading.issued_at, zone)
    if not heading.issued:
        lines.append((label("draft", lang), f"{when} {heading.issued_by}"))
    else:
        lines.append((label("issued", lang), f"{when} {heading.issued_by}"))
        lines.append((label("anchor", lang), f"{heading.anchor_seq} {heading.anchor_hash}"))
    return lines


@lru_cache(maxsize=1)
def font_path() -> str:
    """The Chinese font embedded in every PDF: IPAM_PDF_FONT, else Noto Sans SC (OFL), which
    the pylopdf-fonts-zh-cn package installs."""
    path = os.environ.get("IPAM_PDF_FONT")
    if path:
        return path
    return str(resources.files("pylopdf_fonts_zh_cn") / "NotoSansSC-Regular.otf")


def new_pdf(heading: Heading, lang: str, zone: ZoneInfo, orientation: str = "L"):
    from fpdf import FPDF

    class Pdf(FPDF):
        def footer(self):
            self.set_y(-10)
            self.set_font("cjk", size=7)
            mark = heading.keywords if heading.issued else label("draft", lang)
            self.cell(0, 5, f"{label('page', lang).format(n=self.page_no())}    {mark}", align="C")

    pdf = Pdf(orientation=orientation, unit="mm", format="A4")
    pdf.add_font("cjk", fname=font_path())
    pdf.set_font("cjk", size=8)
    pdf.set_title(heading.title)
    pdf.set_keywords(heading.keywords)
    pdf.set_author(heading.issued_by)
    pdf.set_creation_date(heading.issued_at)
    pdf.set_auto_page_break(True, margin=14)
    pdf.add_page()
    pdf.set_font("cjk", size=14)
    pdf.cell(0, 8, heading.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=8)
    return pdf


def write_pdf(report, params, rows, lang, out: BinaryIO, heading: Heading) -> None:
    from fpdf.fonts import FontFace

    zone = ZoneInfo(params.zone)
    pdf = new_pdf(heading, lang, zone)
    for key, value in _about(heading, params, lang)[1:]:
        pdf.multi_cell(0, 4, f"{key}: {value}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    weights = [_weight(c) for c in report.columns]
    pdf.set_font("cjk", size=6)
    cols = report.columns
    plain = FontFace(emphasis="", fill_color=(235, 235, 235))
    with pdf.table(
        col_widths=weights, text_align="LEFT", line_height=3, headings_style=plain
    ) as table:
        table.row(headings(report, lang, zone))
        for n, row in enumerate(rows, 1):
            if n > PDF_MAX_ROWS:
                raise ValidationError(
                    "a PDF holds at most {PDF_MAX_ROWS} rows; narrow the report (customer, "
                    "pool, period) or take it as CSV or XLSX",
                    "format",
                    PDF_MAX_ROWS=PDF_MAX_ROWS,
                )
            table.row([str(cell(c, v, lang, zone)) for c, v in zip(cols, row, strict=True)])
    out.write(bytes(pdf.output()))


def _weight(c: Column) -> float:
    return {"int": 0.7, "date": 1.0, "instant": 1.5, "term": 1.0}.get(c.kind, 1.6)


WRITERS = {"csv": write_csv, "xlsx": write_xlsx, "pdf": write_pdf}


def write(fmt: str, report, params, rows, lang, out: BinaryIO, heading: Heading) -> None:
    WRITERS[check_format(fmt)](report, params, rows, lang, out, heading)
