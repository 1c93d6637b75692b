"""Probe schedules, runs and findings through the API and the UI."""

from __future__ import annotations

from tests.functional.test_api import error_of


def test_schedule_input_errors_name_the_field_and_change_nothing(engineer, world, same):
    good = {"name": "edge", "pool": "Beijing DC1", "cron": "*/10 * * * *"}
    cases = [
        ({**good, "cron": "sometimes"}, 422, "cron"),
        ({**good, "methods": ["icmp", "ssh"]}, 422, "methods"),
        ({**good, "methods": ["tcp"]}, 422, "tcp_ports"),
        ({**good, "tcp_ports": [70000], "methods": ["tcp"]}, 422, "tcp_ports"),
        ({**good, "pool": None}, 422, "pool"),
        ({**good, "name": "DC1 sweep"}, 422, "name"),
        ({**good, "pool": "no such pool"}, 404, "pool"),
        ({**good, "dark_after": "many"}, 422, "dark_after"),
    ]
    with same():
        for body, status, field in cases:
            r = engineer.api("POST", "/api/v1/probe-schedules", json=body)
            assert error_of(r, status)["field"] == field, body
        r = engineer.api(
            "PATCH", f"/api/v1/probe-schedules/{world['schedule_id']}", json={"enabled": "perhaps"}
        )
        assert error_of(r, 422)["field"] == "enabled"
        assert (
            error_of(engineer.api("GET", "/api/v1/findings?status=closed"), 422)["field"]
            == "status"
        )
        assert error_of(engineer.api("GET", "/api/v1/findings?kind=odd"), 422)["field"] == "kind"


def test_schedule_crud_and_run_now(engineer, world):
    r = engineer.api(
        "POST",
        "/api/v1/probe-schedules",
        json={
            "name": "星河 web",
            "customer": world["b"],
            "cron": "0 * * * *",
            "methods": ["icmp", "tcp"],
            "tcp_ports": [443, 80],
        },
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    made = r.get_json()
    assert made["customer_id"] == world["b"] and made["tcp_ports"] == [80, 443]
    r = engineer.api(
        "PATCH",
        f"/api/v1/probe-schedules/{made['id']}",
        json={"cron": "*/15 * * * *", "enabled": False},
    )
    assert r.get_json()["cron"] == "*/15 * * * *" and r.get_json()["enabled"] is False
    r = engineer.api("POST", f"/api/v1/probe-schedules/{made['id']}/run")
    assert r.status_code == 201 and r.get_json()["status"] == "queued"
    again = engineer.api("POST", f"/api/v1/probe-schedules/{made['id']}/run")
    assert error_of(again, 409)["field"] == "schedule"
    runs = engineer.api("GET", f"/api/v1/probe-runs?schedule={made['id']}").get_json()
    assert [x["status"] for x in runs["items"]] == ["queued"] and runs["total"] == 1


def test_findings_are_listed_filtered_shown_and_resolved(engineer, login, world, same):
    listed = engineer.api("GET", "/api/v1/findings").get_json()
    probed = [f for f in listed["items"] if not f["kind"].startswith("site_")]  # probes' only
    assert [(f["kind"], f["prefix"]) for f in probed] == [("unallocated_in_use", "198.18.9.0/24")]
    assert engineer.api("GET", "/api/v1/findings?kind=allocated_dark").get_json()["total"] == 0
    one = engineer.api("GET", f"/api/v1/findings/{world['finding_id']}").get_json()
    assert one["evidence"][0]["address"] == "198.18.9.20" and one["count"] == 1
    run = engineer.api("GET", f"/api/v1/probe-runs/{world['run_id']}").get_json()
    assert run["status"] == "done" and run["observations"][0]["address"] == "198.18.9.20"
    with same():
        r = engineer.api("POST", f"/api/v1/findings/{world['finding_id']}/resolve", json={})
        assert error_of(r, 422)["field"] == "comment"
        auditor = login("auditor")
        r = auditor.api(
            "POST", f"/api/v1/findings/{world['finding_id']}/resolve", json={"comment": "x"}
        )
        assert r.status_code == 403
    r = engineer.api(
        "POST",
        f"/api/v1/findings/{world['finding_id']}/resolve",
        json={"comment": "a test host; removed"},
    )
    assert r.get_json()["status"] == "resolved" and r.get_json()["resolved_by"] == "user:engineer"
    kind = "kind=unallocated_in_use"
    assert engineer.api("GET", f"/api/v1/findings?{kind}").get_json()["total"] == 0
    assert engineer.api("GET", f"/api/v1/findings?status=resolved&{kind}").get_json()["total"] == 1


def test_ui_pages_show_schedules_runs_and_findings(engineer, login, world):
    page = engineer.get("/probes").get_data(as_text=True)
    assert 'data-schedule="DC1 sweep"' in page and ("Run now" in page or "立即运行" in page)
    page = engineer.get("/findings").get_data(as_text=True)
    assert 'data-prefix="198.18.9.0/24"' in page
    assert "198.18.9.20 有应答，而 198.18.9.0/24 从未分配" in page  # the summary in Chinese
    page = engineer.get(f"/probes/runs/{world['run_id']}").get_data(as_text=True)
    assert "198.18.9.20" in page
    page = engineer.get(f"/pools/{world['pool_id']}").get_data(as_text=True)
    assert 'id="pool-findings"' in page and 'data-prefix="198.18.9.0/24"' in page
    r = engineer.form(f"/findings/{world['finding_id']}/resolve", {"comment": ""})
    assert r.status_code == 422 and 'data-field="comment"' in r.get_data(as_text=True)
    r = engineer.form(f"/findings/{world['finding_id']}/resolve", {"comment": "fixed"})
    assert r.status_code == 302
    page = engineer.get(f"/findings/{world['finding_id']}").get_data(as_text=True)
    assert "fixed" in page and 'id="resolve"' not in page
    r = engineer.form(
        "/probes", {"name": "x", "cron": "nope", "pool": str(world["pool_id"]), "methods": "icmp"}
    )
    assert r.status_code == 422 and 'data-field="cron"' in r.get_data(as_text=True)
    assert 'value="x"' in r.get_data(as_text=True)  # what was typed stays
    # A customer's own page shows no probe findings (investigations are the provider's).
    customer = login("yunfan")
    assert 'id="customer-findings"' not in customer.get(f"/customers/{world['a']}").get_data(
        as_text=True
    )


def test_abuse_case_pages_for_staff_and_for_the_customer(engineer, login, world):
    page = engineer.get("/abuse/cases").get_data(as_text=True)
    assert f'data-case="{world["a_case"]}"' in page
    page = engineer.get(f"/customers/{world['a']}").get_data(as_text=True)
    assert 'id="customer-abuse"' in page and f'data-case="{world["a_case"]}"' in page
    r = engineer.form(f"/abuse/cases/{world['a_case']}/action", {"action": "escalate"})
    assert r.status_code == 409 and "不能执行“升级”" in r.get_data(as_text=True)  # resolved
    customer = login("yunfan")  # 北京云帆: the demo's resolved spam case is its own
    page = customer.get(f"/abuse/cases/{world['a_case']}").get_data(as_text=True)
    assert 'id="case-state"' in page and 'id="sanctions"' not in page
    other = login("xinghe")
    assert other.get(f"/abuse/cases/{world['a_case']}").status_code == 404


def test_a_complaint_posted_to_the_api_lands_on_the_holder_at_its_time(engineer, login, same):
    from pathlib import Path

    arf = (Path(__file__).resolve().parents[1] / "samples" / "abuse" / "arf-spam.eml").read_bytes()
    r = engineer.api("POST", "/api/v1/abuse/reports", data=arf, content_type="message/rfc822")
    assert r.status_code == 201, r.get_data(as_text=True)
    (report,) = r.get_json()["reports"]
    assert report["holding"] == "held" and r.get_json()["cases_opened"] == 1
    again = engineer.api("POST", "/api/v1/abuse/reports", data=arf, content_type="message/rfc822")
    assert again.status_code == 200 and again.get_json()["duplicates"] == 1
    with same():
        bad = engineer.api("POST", "/api/v1/abuse/reports", data=b"x", content_type="text/plain")
        assert error_of(bad, 422)["field"] == "Content-Type"
    yunfan = login("yunfan")  # 北京云帆 held 198.18.7.9 on 2026-01-01
    cases = yunfan.api("GET", "/api/v1/abuse/cases").get_json()["items"]
    assert any(c["prefix"] == "198.18.7.9" and c["state"] == "open" for c in cases)
    xinghe = login("xinghe")
    mine = xinghe.api("GET", "/api/v1/abuse/cases").get_json()["items"]
    assert {c["customer_id"] for c in mine} == {
        xinghe.api("GET", "/api/v1/me").get_json()["customer_id"]
    }
