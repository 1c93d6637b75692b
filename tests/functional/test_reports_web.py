"""Reports, certificates and sites through the API, the UI and the `ipam` command."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from openpyxl import load_workbook

from ipam.certificates import Keyring
from tests.functional.test_api import error_of


@pytest.fixture
def signing(web_app):
    Keyring.from_config(web_app.config).init()


def test_the_auditor_lists_views_and_issues_every_report(login, same):
    auditor = login("auditor")
    listed = auditor.api("GET", "/api/v1/reports").get_json()
    names = [r["name"] for r in listed]
    assert len(names) == 8 and "clause6" in names and "audit_log" in names
    for name in names:
        r = auditor.api("GET", f"/api/v1/reports/{name}?from=2025-01-01")
        assert r.status_code == 200, (name, r.get_data(as_text=True)[:300])
    rows = auditor.api("GET", "/api/v1/reports/ip_filing").get_json()
    assert rows["columns"][:3] == ["first", "last", "count"] and rows["rows"]
    issued = []
    for fmt in ("csv", "xlsx", "pdf"):
        r = auditor.api("POST", "/api/v1/reports/clause6/issue", json={"format": fmt})
        assert r.status_code == 201, r.get_data(as_text=True)
        issued.append(r.get_json())
    for record in issued:
        r = auditor.api("GET", f"/api/v1/issued/{record['id']}")
        digest = hashlib.sha256(r.get_data()).hexdigest()
        assert digest == record["sha256"] == r.headers["X-Content-SHA256"]
    book = load_workbook(io.BytesIO(auditor.get(f"/api/v1/issued/{issued[1]['id']}").get_data()))
    assert book.worksheets[0].cell(1, 1).value == "客户名称"
    # Bad input names its field and keeps nothing.
    with same():
        r = auditor.api(
            "POST",
            "/api/v1/reports/reclamation/issue",
            json={"from": "2026-05-01", "to": "2026-04-01"},
        )
        assert error_of(r, 422)["field"] == "to"
        r = auditor.api("POST", "/api/v1/reports/ip_filing/issue", json={"at": "2099-01-01"})
        assert error_of(r, 422)["field"] == "at"
        r = auditor.api("GET", "/api/v1/reports/nonsense")
        assert error_of(r, 404)["field"] == "report"
        r = auditor.api("GET", "/api/v1/reports/ip_filing?format=docx")
        assert error_of(r, 422)["field"] == "format"
        r = auditor.api("POST", "/api/v1/reports/ip_filing/issue", json={"reveal": "true"})
        assert error_of(r, 422)["field"] == "reason"


def test_a_customer_pulls_only_its_own_space(login, world):
    yunfan = login("yunfan")
    names = [r["name"] for r in yunfan.api("GET", "/api/v1/reports").get_json()]
    assert names == ["ip_filing", "ip_filing_changes", "sublessees"]
    r = yunfan.get("/api/v1/reports/ip_filing?format=csv")
    assert r.mimetype == "text/csv" and r.get_data().startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(r.get_data().decode("utf-8-sig"))))
    assert {row[12] for row in table[1:]} == {"北京云帆网络科技有限公司"} and len(table) > 1
    assert yunfan.api("GET", "/api/v1/reports/clause6").status_code == 404
    r = yunfan.api("GET", f"/api/v1/reports/ip_filing?customer={world['b']}")
    assert error_of(r, 404)["field"] == "customer"
    own = yunfan.api("GET", f"/api/v1/issued/{world['a_issued']}")
    assert own.status_code == 200 and own.mimetype == "text/csv"
    assert login("xinghe").api("GET", f"/api/v1/issued/{world['a_issued']}").status_code == 404


def test_certificates_are_issued_and_verified_over_the_api(login, signing):
    auditor = login("auditor")
    r = auditor.api(
        "POST",
        "/api/v1/certificates",
        json={"address": "198.18.7.9", "at": "2026-07-01T10:00:00+08:00"},
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    made = r.get_json()
    assert made["certificate"]["certificate"]["answer"]["sublessee"]["name"] == "李明"
    content = auditor.get(f"/api/v1/issued/{made['json_file']['id']}").get_data()
    pdf = auditor.get(f"/api/v1/issued/{made['pdf_file']['id']}").get_data()
    for data in (content, pdf):
        verdict = auditor.api(
            "POST", "/api/v1/certificates/verify", data=data,
            headers={"Content-Type": "application/octet-stream"},
        ).get_json()  # fmt: skip
        assert verdict["ok"] and verdict["serial"] == made["json_file"]["id"], verdict
    forged = content.replace(b"198.18.7.9", b"198.18.7.8", 1)
    verdict = auditor.api(
        "POST", "/api/v1/certificates/verify", data=forged,
        headers={"Content-Type": "application/octet-stream"},
    ).get_json()  # fmt: skip
    assert not verdict["ok"] and any("signature" in p for p in verdict["problems"])
    # Customers: certificates for their own addresses only.
    xinghe, yunfan = login("xinghe"), login("yunfan")
    assert (
        xinghe.api("POST", "/api/v1/certificates", json={"address": "198.18.7.9"}).status_code
        == 201
    )
    r = yunfan.api("POST", "/api/v1/certificates", json={"address": "198.18.7.9"})
    assert error_of(r, 404)["field"] == "address"
    r = auditor.api("POST", "/api/v1/certificates", json={"address": "203.0.113.1"})
    assert error_of(r, 422)["field"] == "address"


def test_the_ui_filters_drafts_and_issues(login, world, signing):
    auditor = login("auditor")
    page = auditor.get("/reports").get_data(as_text=True)
    assert 'id="report-clause6"' in page
    page = auditor.get("/reports/ip_filing_changes?from=2025-01-01&to=2026-12-31").get_data(
        as_text=True
    )
    assert 'id="report-rows"' in page and "198.18.7.0/24" in page
    r = auditor.get("/reports/ip_filing_changes?from=2026-05-01&to=2026-04-01")
    assert r.status_code == 422 and 'data-field="to"' in r.get_data(as_text=True)
    r = auditor.get("/reports/clause6?format=pdf")
    assert r.mimetype == "application/pdf" and r.get_data().startswith(b"%PDF-")
    r.close()
    r = auditor.form("/reports/sublessees/issue", {"format": "xlsx", "lang": "en"})
    assert r.status_code == 302 and "issued=" in r.location
    page = auditor.get(r.location).get_data(as_text=True)
    assert "sublessees-" in page and ".xlsx" in page
    r = auditor.form("/certificates/issue", {"address": "198.18.7.9", "at": "2026-07-01 10:00"})
    assert r.status_code == 200 and 'id="certificate-pdf"' in r.get_data(as_text=True)
    customer = login("yunfan")
    r = customer.form(
        "/sites/new", {"name": "门户", "domain": "portal.yunfan.example", "category": "general",
                       "addresses": "198.18.9.1"},
    )  # fmt: skip
    assert r.status_code == 422 and 'data-field="addresses[0]"' in r.get_data(as_text=True)
    r = customer.form(
        "/sites/new", {"name": "门户", "domain": "portal.yunfan.example", "category": "general",
                       "addresses": "198.18.7.131", "icp_number": "京ICP备1号"},
    )  # fmt: skip
    assert r.status_code == 302
    assert "portal.yunfan.example" in customer.get("/sites").get_data(as_text=True)
    assert "portal.yunfan.example" not in login("xinghe").get("/sites").get_data(as_text=True)


def test_reports_certificates_and_anchors_from_the_command_line(run, tmp_path):
    run("demo")
    out = run("report", "issue", "clause6", "--format", "pdf", "-o", tmp_path / "c6.pdf").output
    assert "issued" in out and (tmp_path / "c6.pdf").read_bytes().startswith(b"%PDF-")
    run("report", "ip_filing", "--format", "csv", "-o", tmp_path / "ip.csv")  # issue is implied
    for name in ("c6.pdf", "ip.csv"):
        assert "is in the log" in run("audit", "verify", "--anchor", tmp_path / name).output
    bad = run(
        "report", "issue", "reclamation", "--from", "2026-05-01", "--to", "2026-04-01", ok=False
    )
    assert bad.exit_code == 1 and "to:" in bad.output
    listed = run("report", "issued").output
    assert "2 issued" in listed
    stray = tmp_path / "stray.csv"
    stray.write_bytes(b"no anchor here")
    bad = run("audit", "verify", "--anchor", stray, ok=False)
    assert bad.exit_code == 1 and "anchor" in bad.output
    out = run(
        "certificate", "issue", "198.18.7.9", "--at", "2026-07-01 10:00", "-o", tmp_path
    ).output
    cert = next(tmp_path.glob("certificate-*.json"))
    pdf = next(tmp_path.glob("certificate-*-zh.pdf"))
    assert "valid" in run("certificate", "verify", cert).output
    assert "valid" in run("certificate", "verify", pdf).output
    body = json.loads(cert.read_bytes())
    assert body["certificate"]["answer"]["status"] == "subleased"
    forged = tmp_path / "forged.json"
    forged.write_bytes(cert.read_bytes().replace(b"subleased", b"allocated"))
    bad = run("certificate", "verify", forged, ok=False)
    assert bad.exit_code == 1 and "FAILED" in bad.output
    assert "*" in run("keys", "list").output


def test_the_search_box_finds_an_address_a_customer_and_a_case(login, world):
    engineer = login("engineer")
    page = engineer.get("/search?q=198.18.7.9").get_data(as_text=True)
    assert 'data-kind="address"' in page and "/attribution?address=198.18.7.9" in page
    page = engineer.get(f"/search?q=%23{world['a_case']}").get_data(as_text=True)
    assert f"/abuse/cases/{world['a_case']}" in page
    hits = engineer.api("GET", "/api/v1/search?q=91110108MA01C8XK7H").get_json()
    assert [(h["kind"], h["customer_id"]) for h in hits] == [("customer", world["a"])]
    r = engineer.api("GET", "/api/v1/search?q=")
    assert error_of(r, 422)["field"] == "q"
    assert login("xinghe").api("GET", "/api/v1/search?q=91110108MA01C8XK7H").get_json() == []
