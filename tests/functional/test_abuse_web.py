"""The abuse desk's front doors: case actions, typed-in complaints, rejected input, incidents."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ipam import jobs
from ipam.db import utcnow
from ipam.models import JobRun, OutboxMessage
from tests.functional.test_api import error_of

GOOD = {
    "address": "198.18.7.9",
    "time": "2026-01-01T10:00:00+08:00",
    "category": "spam",
    "description": "loan scheme mail",
    "reporter": "abuse@mailbox.example",
}


def test_a_typed_in_complaint_is_checked_field_by_field_then_lands_on_the_holder(
    engineer, login, same
):
    with same():
        for body, field in (
            ({**GOOD, "address": "198.18.7.300"}, "address"),
            ({**GOOD, "time": "last tuesday"}, "time"),
            ({**GOOD, "time": ""}, "time"),
            ({**GOOD, "time": "2099-01-01T00:00:00Z"}, "time"),
            ({**GOOD, "category": "rudeness"}, "category"),
            ({**GOOD, "colour": "red"}, "colour"),
        ):
            r = engineer.api("POST", "/api/v1/abuse/reports", json=body)
            assert error_of(r, 422)["field"] == field, body
        page = engineer.form("/abuse/reports/new", {**GOOD, "address": "nowhere"})
        assert page.status_code == 422
        assert 'data-field="address"' in page.get_data(as_text=True)
    r = engineer.api("POST", "/api/v1/abuse/reports", json=GOOD)
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["reports"][0]["holding"] == "held"
    assert engineer.api("POST", "/api/v1/abuse/reports", json=GOOD).get_json()["duplicates"] == 1
    # 北京云帆 held 198.18.7.9 on 2026-01-01; the case is its, not 上海星河's (today's holder).
    mine = login("yunfan").api("GET", "/api/v1/abuse/cases?state=open").get_json()["items"]
    assert [c["prefix"] for c in mine] == ["198.18.7.9"]
    theirs = login("xinghe").api("GET", "/api/v1/abuse/cases").get_json()["items"]
    assert all(c["id"] != mine[0]["id"] for c in theirs)
    # The UI form: a new complaint goes to its case page.
    r = engineer.form("/abuse/reports/new", {**GOOD, "time": "2026-01-01T12:00:00+08:00"})
    assert r.status_code == 302 and r.location.endswith(f"/abuse/cases/{mine[0]['id']}")


def test_case_actions_through_the_api_mail_answer_and_sanction(engineer, login, world, smtp):
    inbox, port = smtp
    engineer.http.application.config["IPAM_SMTP_PORT"] = port
    case = engineer.api("POST", "/api/v1/abuse/reports", json=GOOD).get_json()["reports"][0]
    case_id = engineer.api("GET", "/api/v1/abuse/cases?state=open").get_json()["items"][0]["id"]
    assert case["prefix"] == "198.18.7.9"
    url = f"/api/v1/abuse/cases/{case_id}"
    r = engineer.api("POST", f"{url}/transition", json={"action": "escalate"})
    assert error_of(r, 422)["field"] == "comment"
    r = engineer.api("POST", f"{url}/notify", json={"with_sublessee": True})
    assert r.status_code == 200 and r.get_json()["state"] == "notified"
    ((rcpts, content),) = inbox.messages
    assert rcpts == ["abuse@yunfan.example", "ops@fengchao.example"]
    mail = email.message_from_bytes(content, policy=email.policy.default)
    assert mail["Subject"] == f"[abuse case {case_id}] spam from 198.18.7.9"
    r = engineer.api("POST", f"{url}/notify", json={})
    assert r.status_code == 409 and len(inbox.messages) == 1  # no second mail
    yunfan = login("yunfan")
    r = yunfan.api("POST", f"{url}/answer", json={"status": "answered"})
    assert error_of(r, 422)["field"] == "answer"
    r = yunfan.api("POST", f"{url}/answer", json={"status": "answered", "answer": "mailer removed"})
    assert r.get_json()["customer_status"] == "answered"
    detail = engineer.api("GET", url).get_json()
    assert [e["action"] for e in detail["events"]] == ["notify", "customer_answered"]
    assert detail["reports"][0]["sha256"] and detail["sanctions"] == []
    r = engineer.api("POST", f"{url}/sanctions", json={})
    assert error_of(r, 422)["field"] == "reason"
    r = engineer.api("POST", f"{url}/sanctions", json={"reason": "spam run"})
    assert (r.get_json()["kind"], r.get_json()["status"]) == ("warning", "confirmed")
    # After a warning, the next rung waits for an engineer.
    r = engineer.api("POST", f"{url}/sanctions", json={"reason": "second spam run"})
    assert r.status_code == 201 and r.get_json()["kind"] == "suspension"
    assert r.get_json()["status"] == "proposed"
    confirmed = engineer.api("POST", f"/api/v1/sanctions/{r.get_json()['id']}/confirm")
    assert confirmed.get_json()["status"] == "confirmed"
    a = engineer.api("GET", f"/api/v1/customers/{world['a']}").get_json()
    assert a["status"] == "suspended"
    # The history in Chinese: verbs, states, actors and what the system wrote.
    page = engineer.get(f"/abuse/cases/{case_id}").get_data(as_text=True)
    for words in ("已发邮件至 abuse@yunfan.example", "通知", "客户已答复", "mailer removed",
                  "升级", "警告：spam run", "用户 engineer", "暂停服务"):  # fmt: skip
        assert words in page, words


def test_a_mail_server_that_is_away_keeps_the_mail_until_it_is_back(
    engineer, world, same, smtp, engine
):
    """Mail goes out after the commit, from the outbox: a server away delays it, once."""
    inbox, port = smtp
    config = engineer.http.application.config
    config["IPAM_SMTP_PORT"] = 9  # nothing listens
    engineer.api("POST", "/api/v1/abuse/reports", json=GOOD)
    case_id = engineer.api("GET", "/api/v1/abuse/cases?state=open").get_json()["items"][0]["id"]
    r = engineer.api("POST", f"/api/v1/abuse/cases/{case_id}/notify", json={})
    assert r.status_code == 200 and r.get_json()["state"] == "notified"
    with Session(engine) as s:
        (row,) = s.scalars(select(OutboxMessage)).all()
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.recipients == ["abuse@yunfan.example"] and "Connection" in row.last_error
        assert row.next_attempt_at > utcnow()  # backoff: not tried again at once
        failed_run = s.scalars(select(JobRun).where(JobRun.job == "outbox")).one()
        assert failed_run.summary == {"sent": 0, "retried": 1, "failed": 0}
    # A refused action queues nothing.
    with same():
        again = engineer.api("POST", f"/api/v1/abuse/cases/{case_id}/notify", json={})
        assert error_of(again, 409)["field"] == "state"
    config["IPAM_SMTP_PORT"] = port  # the server is back, but the retry is not due yet
    jobs.run(engine, "outbox", config, run_by="test")
    assert inbox.messages == []
    with Session(engine) as s:
        s.execute(update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        s.commit()
    for _ in range(2):  # due now: sent once, however often the job runs
        jobs.run(engine, "outbox", config, run_by="test")
    ((rcpts, _content),) = inbox.messages
    assert rcpts == ["abuse@yunfan.example"]
    with Session(engine) as s:
        row = s.scalars(select(OutboxMessage)).one()
        assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)


def test_rejected_input_is_listed_shown_and_run_again(engineer, login, same):
    from pathlib import Path

    xarf = (Path(__file__).resolve().parents[1] / "samples" / "abuse" / "xarf-v4.json").read_bytes()
    r = engineer.api("POST", "/api/v1/abuse/reports", data=xarf[:-20], content_type="text/csv")
    assert r.status_code == 422
    (rejected,) = r.get_json()["rejected"]
    listed = engineer.api("GET", "/api/v1/abuse/rejected").get_json()["items"]
    assert rejected["id"] in [x["id"] for x in listed]
    raw = login("auditor").api("GET", f"/api/v1/abuse/rejected/{rejected['id']}/raw")
    assert raw.data == xarf[:-20]
    page = engineer.get("/abuse/rejected").get_data(as_text=True)
    assert f'id="rejected-{rejected["id"]}"' in page
    with same():
        bad = engineer.api(
            "POST", f"/api/v1/abuse/rejected/{rejected['id']}/retry", json={"format": "pdf"}
        )
        assert error_of(bad, 422)["field"] == "format"
    # The truncated JSON stays unreadable as XARF: refused again, with its reason.
    again = engineer.api(
        "POST", f"/api/v1/abuse/rejected/{rejected['id']}/retry", json={"format": "xarf-json"}
    )
    assert again.status_code == 422 and "JSON" in again.get_json()["rejected"][0]["reason"]
    # A whole report posted under the wrong type is accepted once run as what it is.
    r = engineer.api("POST", "/api/v1/abuse/reports", data=xarf, content_type="text/csv")
    wrong = r.get_json()["rejected"][0]["id"]
    r = engineer.form(f"/abuse/rejected/{wrong}/retry", {"format": "xarf-json"})
    assert r.status_code == 302
    ok = engineer.api("GET", "/api/v1/abuse/rejected?status=accepted").get_json()["items"]
    assert [x["id"] for x in ok] == [wrong] and ok[0]["report_id"]


def test_an_incident_through_the_api_and_the_ui(engineer, login, world, same):
    with same():
        for body, field in (
            ({"title": "x", "category": "malware", "hours": 30}, "hours"),
            ({"title": "", "category": "malware"}, "title"),
            ({"title": "x", "category": "gossip"}, "category"),
            ({"title": "x", "category": "malware", "report_ids": "all"}, "report_ids"),
            ({"title": "x", "category": "malware", "severity": "high"}, "severity"),
        ):
            r = engineer.api("POST", "/api/v1/incidents", json=body)
            assert error_of(r, 422)["field"] == field, body
        r = engineer.form("/incidents", {"title": "x", "category": "malware", "hours": "1"})
        assert r.status_code == 422 and 'data-field="hours"' in r.get_data(as_text=True)
    case_id = world["a_case"]
    r = engineer.api(
        "POST",
        "/api/v1/incidents",
        json={"title": "Spam run", "category": "spam", "hours": 6, "case": case_id},
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    inc = r.get_json()
    assert len(inc["evidence"]) == 2 and inc["customer_id"] == world["a"]  # the case's 2 reports
    url = f"/api/v1/incidents/{inc['id']}"
    r = engineer.api("POST", f"{url}/actions", json={"kind": "measure", "text": "port 25 shut"})
    assert r.status_code == 201 and r.get_json()["actions"][-1]["text"] == "port 25 shut"
    assert login("auditor").api("POST", f"{url}/actions", json={}).status_code == 403
    r = engineer.form(f"/incidents/{inc['id']}", {"action": "note", "text": "customer called"})
    assert r.status_code == 302
    r = engineer.form(f"/incidents/{inc['id']}", {"action": "freeze", "report_ids": "x"})
    assert r.status_code == 422 and 'data-field="report_ids"' in r.get_data(as_text=True)
    r = engineer.api("POST", f"{url}/close", json={"text": "done"})
    assert r.status_code == 409  # not reported yet
    r = engineer.api("POST", f"{url}/report", json={"reported_to": "市公安局", "text": "filed"})
    assert r.get_json()["state"] == "reported"
    r = engineer.api("POST", f"{url}/close", json={"text": "done"})
    assert r.get_json()["state"] == "closed"
    data = login("auditor").api("GET", f"{url}/export").get_json()
    assert data["reported_on_time"] is True
    assert [a["kind"] for a in data["actions"]] == [
        "declare", "evidence", "measure", "note", "report", "close",
    ]  # fmt: skip
    for item in data["evidence"]:
        assert hashlib.sha256(base64.b64decode(item["raw_base64"])).hexdigest() == item["sha256"]
    text = engineer.get(f"/incidents/{inc['id']}/export").get_data(as_text=True)
    assert "port 25 shut" in text and data["evidence"][0]["sha256"] in text
    assert text.startswith(f"安全事件报告 {inc['id']}：Spam run") and "(Asia/Shanghai)" in text
    assert "报告时间" in text and "（按时）" not in text and "(按时)" in text
    assert "已宣布；须在 6 小时内报告" in text  # what the system wrote, in the reader's words
    english = engineer.api("GET", f"{url}/export?format=text&lang=en").get_data(as_text=True)
    assert english.startswith(f"Incident report {inc['id']}: Spam run") and "(on time)" in english
    page = engineer.get(f"/incidents/{inc['id']}").get_data(as_text=True)
    assert 'id="evidence"' in page and data["evidence"][0]["sha256"] in page
    # The log's system lines, its verbs and its actors in the reader's language; people's words
    # as written.
    for words in ("已宣布；须在 6 小时内报告", "已固定 2 条原始记录", "已报告 市公安局：filed",
                  "宣布事件", "用户 engineer", "port 25 shut"):  # fmt: skip
        assert words in page, words
    english = engineer.get(f"/incidents/{inc['id']}", headers={"Accept-Language": "en"})
    english = english.get_data(as_text=True)
    for words in ("declared; report due within 6 h", "2 original record(s) frozen",
                  "reported to 市公安局: filed", "user engineer"):  # fmt: skip
        assert words in english, words
    listing = engineer.get("/incidents").get_data(as_text=True)
    assert f'id="incident-{inc["id"]}"' in listing
    case_page = engineer.get(f"/abuse/cases/{case_id}").get_data(as_text=True)
    assert f"/incidents/{inc['id']}" in case_page
    customer = login("yunfan")
    assert customer.get(f"/incidents/{inc['id']}").status_code == 403


def test_reports_on_unheld_space_are_found_in_their_own_list(engineer, world):
    """They open no case: the UI, the API and the CLI list them (issue 14, item 4)."""
    raw = b"address,time,category\n198.18.9.20,2026-11-01T00:00:00+08:00,attack\n"
    r = engineer.api("POST", "/api/v1/abuse/reports", data=raw,
                     headers={"Content-Type": "text/csv"})  # fmt: skip
    assert r.status_code in (200, 201), r.get_data(as_text=True)
    listed = engineer.api("GET", "/api/v1/abuse/unattributed?holding=unallocated").get_json()
    assert any(x["prefix"] == "198.18.9.20" for x in listed["items"])
    page = engineer.get("/abuse/unattributed").get_data(as_text=True)
    assert "198.18.9.20" in page and 'id="unattributed"' in page
    bad = engineer.api("GET", "/api/v1/abuse/unattributed?holding=held")
    assert bad.status_code == 422


SHADOW = (
    b'"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city"\n'
    b'"2026-11-01 03:00:00","198.18.7.9","tcp",23,,"telnet",64500,"CN","BJ",""\n'
)


def test_a_shadowserver_report_posted_as_csv_is_read_as_one(engineer, world):
    r = engineer.api("POST", "/api/v1/abuse/reports", data=SHADOW,
                     headers={"Content-Type": "text/csv"})  # fmt: skip
    assert r.status_code in (200, 201), r.get_data(as_text=True)
    assert [x["prefix"] for x in r.get_json()["reports"]] == ["198.18.7.9"]


def test_the_case_page_offers_only_what_the_state_allows(engineer, world, engine):
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ipam.abuse import cases
    from ipam.models import AbuseCase

    with Session(engine) as s:
        by_state = {c.state.value if hasattr(c.state, "value") else c.state: c.id
                    for c in s.scalars(select(AbuseCase))}  # fmt: skip
    for state, case_id in by_state.items():
        page = engineer.get(f"/abuse/cases/{case_id}").get_data(as_text=True)
        with Session(engine) as s:
            allowed = cases.allowed_actions(s.get(AbuseCase, case_id))
        for action in ("mail", "notify", "acknowledge", "escalate", "resolve", "sanction"):
            shown = f'id="action-{action}"' in page
            assert shown == (action in allowed), (state, action, allowed)
    assert "notify" not in cases.allowed_actions(AbuseCase(state="notified"))
    assert cases.allowed_actions(AbuseCase(state="resolved")) == []


def test_a_url_only_complaint_posted_to_the_api_finds_the_site(engineer, world):
    body = b"url,time,category\nhttps://liming-blog.example/x,2026-07-02T03:00:00+08:00,phishing\n"
    r = engineer.api("POST", "/api/v1/abuse/reports", data=body,
                     headers={"Content-Type": "text/csv"})  # fmt: skip
    assert r.status_code in (200, 201), r.get_data(as_text=True)
    assert [x["prefix"] for x in r.get_json()["reports"]] == ["198.18.7.9"]
    r = engineer.api("POST", "/api/v1/abuse/reports", data=body.replace(b"liming", b"nobody"),
                     headers={"Content-Type": "text/csv"})  # fmt: skip
    assert r.get_json()["rejected"][0]["field"] == "domain"
    listed = engineer.api("GET", "/api/v1/abuse/rejected?field=domain").get_json()["items"]
    assert [x["field"] for x in listed] == ["domain"]
    page = engineer.get("/abuse/unattributed").get_data(as_text=True)
    assert 'id="unattributed-names"' in page and "nobody-blog.example" in page


def test_a_case_has_an_owner_and_the_notice_speaks_chinese_first(
    engineer, login, world, smtp, same
):
    inbox, port = smtp
    engineer.http.application.config["IPAM_SMTP_PORT"] = port
    engineer.api("POST", "/api/v1/abuse/reports", json=GOOD)
    case_id = engineer.api("GET", "/api/v1/abuse/cases?state=open").get_json()["items"][0]["id"]
    url = f"/api/v1/abuse/cases/{case_id}"
    with same():
        r = engineer.api("POST", f"{url}/owner", json={"owner": "auditor"})
        assert error_of(r, 422)["field"] == "owner"  # only staff work cases
        r = engineer.api("POST", f"{url}/notify", json={"template": "nonsense"})
        assert error_of(r, 422)["field"] == "template" and inbox.messages == []
    r = engineer.form(f"/abuse/cases/{case_id}/action", {"action": "take"})
    assert r.status_code == 302
    assert engineer.api("GET", url).get_json()["owner"] == "engineer"
    mine = engineer.get("/abuse/cases?mine=1").get_data(as_text=True)
    assert f'data-case="{case_id}"' in mine
    assert f'data-case="{world["a_case"]}"' not in mine  # nobody's
    listed = engineer.api("GET", "/api/v1/lists/cases?owner=engineer").get_json()
    assert [row[0] for row in listed["items"]] == [case_id]
    r = engineer.api("POST", f"{url}/notify", json={"template": "attack", "note": "请在今天内回复"})
    assert r.status_code == 200, r.get_data(as_text=True)
    ((_rcpts, content),) = inbox.messages
    body = email.message_from_bytes(content, policy=email.policy.default).get_content()
    zh, en = body.index("滥用案件"), body.index("Abuse case")
    assert zh < en  # Chinese first
    assert "对他人发起了网络攻击" in body and "attacked others" in body
    assert "备注：请在今天内回复" in body and "(Asia/Shanghai)" in body and " UTC" not in body
    page = engineer.get(f"/abuse/cases/{case_id}").get_data(as_text=True)
    assert "改由 engineer 处理" in page and "指定处理人" in page
    r = engineer.api("POST", f"{url}/owner", json={"owner": None})
    assert r.get_json()["owner"] is None
