"""Lists filter, sort, page and export exactly what is filtered, within the caller's scope."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ipam.models import Allocation, AuditLog
from tests.functional.test_api import error_of


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    data = response.get_data()
    assert data.startswith(b"\xef\xbb\xbf")  # a BOM, so spreadsheets read it as UTF-8
    return list(csv.reader(io.StringIO(data[3:].decode())))


def test_a_list_filters_sorts_and_pages(engineer, world, engine):
    with Session(engine) as s:
        held = s.scalar(select(func.count()).select_from(Allocation))
        current = s.scalar(select(func.count()).where(Allocation.valid_to.is_(None)))
        of_a = s.scalar(
            select(func.count()).where(
                Allocation.customer_id == world["a"], Allocation.valid_to.is_(None)
            )
        )
    body = engineer.api("GET", "/api/v1/lists/allocations").get_json()
    assert body["total"] == current and body["columns"][:2] == ["id", "prefix"]
    every = engineer.api("GET", "/api/v1/lists/allocations?state=all&limit=500").get_json()
    assert every["total"] == held
    mine = engineer.api("GET", f"/api/v1/lists/allocations?customer={world['a']}").get_json()
    assert mine["total"] == of_a and of_a > 0
    by_id = engineer.api("GET", "/api/v1/lists/allocations?state=all&sort=id&limit=3").get_json()
    ids = [row[0] for row in by_id["items"]]
    assert ids == sorted(ids) and len(ids) == 3
    after = engineer.api(
        "GET", "/api/v1/lists/allocations?state=all&sort=id&limit=3&offset=3"
    ).get_json()
    assert min(row[0] for row in after["items"]) > max(ids)  # the next page follows on
    down = engineer.api("GET", "/api/v1/lists/allocations?state=all&sort=-id&limit=3").get_json()
    assert [row[0] for row in down["items"]] == sorted(
        (row[0] for row in every["items"]), reverse=True
    )[:3]


def test_the_csv_holds_exactly_what_is_filtered_in_the_users_language(engineer, world):
    page = engineer.get(f"/lists/allocations?customer={world['a']}&state=all")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="list-csv"' in text
    api = engineer.api("GET", f"/api/v1/lists/allocations?customer={world['a']}&state=all")
    rows = _csv(engineer.get(f"/lists/allocations?customer={world['a']}&state=all&format=csv"))
    assert rows[0][:3] == ["编号", "地址段", "客户"]
    assert len(rows) - 1 == api.get_json()["total"]
    assert {r[2] for r in rows[1:]} == {"北京云帆网络科技有限公司"}
    english = _csv(engineer.api("GET", "/api/v1/lists/allocations?state=all&format=csv&lang=en"))
    assert english[0][:3] == ["id", "prefix", "customer"]
    # Personal data stays masked in the export as on the page.
    sublessees = _csv(engineer.get("/lists/sublessees?format=csv"))
    numbers = [r[4] for r in sublessees[1:]]
    assert numbers and all("*" in n for n in numbers)


def test_customers_read_their_own_rows_and_not_the_staffs_lists(login, world, engine):
    a = login("yunfan")
    body = a.api("GET", "/api/v1/lists/allocations?state=all&limit=500").get_json()
    with Session(engine) as s:
        theirs = s.scalar(select(func.count()).where(Allocation.customer_id == world["a"]))
    assert body["total"] == theirs
    assert {row[2] for row in body["items"]} == {"北京云帆网络科技有限公司"}
    assert a.api("GET", "/api/v1/lists/audit").status_code == 403
    assert a.get("/lists/audit").status_code == 403
    names = [d["name"] for d in a.api("GET", "/api/v1/lists").get_json()]
    assert "audit" not in names and "allocations" in names


def test_bad_filters_name_the_field(engineer, login, world, engine):
    for url, field in (
        ("/api/v1/lists/allocations?state=maybe", "state"),
        ("/api/v1/lists/allocations?sort=purpose_x", "sort"),
        ("/api/v1/lists/audit?from=yesterday", "from"),
        ("/api/v1/lists/cases?from=2026-05-01&to=2026-04-01", "to"),
    ):
        assert error_of(engineer.api("GET", url), 422)["field"] == field, url
    assert error_of(engineer.api("GET", "/api/v1/lists/nothing"), 404)["field"] == "list"
    r = engineer.api("GET", "/api/v1/lists/allocations?customer=nobody-at-all")
    assert error_of(r, 404)["field"] == "customer"
    page = engineer.get("/lists/allocations?state=maybe")
    assert page.status_code == 200 and 'data-field="state"' in page.get_data(as_text=True)
    with Session(engine) as s:
        entries = s.scalar(select(func.count()).select_from(AuditLog))
    audit = engineer.api("GET", "/api/v1/lists/audit?limit=1").get_json()
    assert audit["total"] == entries and entries > 0


def test_the_command_line_lists_filters_and_exports(run, world, engineer):
    names = run("list").output
    assert "allocations" in names and "audit" in names
    out = run("list", "allocations", "--filter", f"customer={world['a']}", "--sort", "-id").output
    api = engineer.api("GET", f"/api/v1/lists/allocations?customer={world['a']}").get_json()
    assert out.splitlines()[-1] == f"{api['total']} / {api['total']}"
    assert "北京云帆网络科技有限公司" in out
    bad = run("list", "allocations", "--filter", "state=maybe", ok=False)
    assert bad.exit_code != 0 and "state" in bad.output
    bad = run("list", "allocations", "--filter", "colour=red", ok=False)
    assert bad.exit_code != 0 and "colour" in bad.output


def test_the_command_line_refuses_in_the_users_language(run, world, monkeypatch):
    monkeypatch.setenv("IPAM_LANG", "zh")
    out = run("list", "allocations", "--filter", "state=maybe", ok=False).output
    assert "错误：state: 'maybe' 不在可选值之列：current, ended, all" in out
    out = run("whois", "198.18.7.1/33", ok=False).output
    assert "是前缀；请给出单个地址" in out
    monkeypatch.setenv("IPAM_LANG", "en")
    out = run("whois", "198.18.7.1/33", ok=False).output
    assert "Error: address: '198.18.7.1/33' is a prefix; give a single address" in out
    monkeypatch.delenv("IPAM_LANG")
    monkeypatch.setenv("LC_ALL", "zh_CN.UTF-8")  # the locale decides when IPAM_LANG is unset
    assert "错误：" in run("whois", "198.18.7.1/33", ok=False).output


def test_change_requests_and_quarantine_are_lists_too(engineer, login, world, engine):
    from ipam.models import ChangeRequest, Quarantine

    with Session(engine) as s:
        of_b = s.scalar(select(func.count()).where(ChangeRequest.customer_id == world["b"]))
        cooling = s.scalar(select(func.count()).where(Quarantine.released_at.is_(None)))
    b = login("xinghe").api("GET", "/api/v1/lists/requests").get_json()
    assert b["total"] == of_b > 0 and {row[1] for row in b["items"]} == {"上海星河数据服务有限公司"}
    rows = _csv(engineer.get("/lists/requests?status=pending&format=csv"))
    assert rows[0][4] == "状态" and all(r[4] == "待审批" for r in rows[1:])
    q = engineer.api("GET", "/api/v1/lists/quarantine").get_json()
    assert q["total"] == cooling
    assert login("xinghe").api("GET", "/api/v1/lists/quarantine").status_code == 403


def test_counting_stops_at_the_cap_and_says_so(engineer, world, engine, monkeypatch):
    from ipam import lists

    with Session(engine) as s:
        held = s.scalar(select(func.count()).select_from(Allocation))
    assert held > 4
    monkeypatch.setattr(lists, "COUNT_CAP", 3)
    body = engineer.api("GET", "/api/v1/lists/allocations?state=all&limit=2").get_json()
    assert body["total"] == 4 and body["exact"] is False  # 3 + 1: "more than 3"
    body = engineer.api(
        "GET", f"/api/v1/lists/allocations?state=all&limit=2&offset={held - 2}"
    ).get_json()
    assert body["total"] == held and body["exact"] is True  # counted from the page on
    page = engineer.get("/lists/allocations?state=all&limit=2").get_data(as_text=True)
    assert "共 3+ 行符合条件" in page and 'id="list-next"' in page


def test_unattributed_complaints_are_a_list(engineer, login, engine):
    from ipam.models import AbuseReport

    report = {
        "address": "198.18.9.20",
        "time": "2026-06-01T10:00:00+08:00",
        "category": "spam",
        "description": "squatter",
        "reporter": "t@example.com",
    }
    r = engineer.api("POST", "/api/v1/abuse/reports", json=report)
    assert r.status_code in (200, 201), r.get_data(as_text=True)
    with Session(engine) as s:
        unheld = s.scalar(select(func.count()).where(AbuseReport.holding != "held"))
    body = engineer.api("GET", "/api/v1/lists/unattributed").get_json()
    assert body["total"] == unheld > 0
    rows = _csv(engineer.get("/lists/unattributed?format=csv"))
    assert len(rows) - 1 == unheld and all(r[1] in ("未分配", "冷却隔离") for r in rows[1:])
    assert login("yunfan").api("GET", "/api/v1/lists/unattributed").status_code == 403


def test_the_sites_register_and_probe_runs_are_lists_too(engineer, login, world, engine):
    from ipam.models import ProbeRun, Site

    with Session(engine) as s:
        current = s.scalar(select(func.count()).where(Site.valid_to.is_(None)))
        of_b = s.scalar(
            select(func.count()).where(Site.valid_to.is_(None), Site.customer_id == world["b"])
        )
        runs = s.scalar(select(func.count()).select_from(ProbeRun))
    rows = _csv(engineer.get("/lists/sites?format=csv"))
    assert rows[0][4] == "域名" and len(rows) - 1 == current > 0
    b = login("xinghe").api("GET", "/api/v1/lists/sites").get_json()
    assert b["total"] == of_b and {r[1] for r in b["items"]} <= {"上海星河数据服务有限公司"}
    listed = engineer.api("GET", "/api/v1/lists/runs").get_json()
    assert listed["total"] == runs > 0
    page = engineer.get("/lists/runs").get_data(as_text=True)
    assert "已完成" in page  # the world's run, its status in Chinese
    assert login("xinghe").api("GET", "/api/v1/lists/runs").status_code == 403
