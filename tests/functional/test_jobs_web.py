"""Heavy work off the web worker (issue 17): a large complaint batch and an asynchronous
report are accepted (202, a job to poll) and carried out apart; embedded, by the scheduler
of the same process, with no broker and no Celery loaded."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ipam.jobs.scheduler import Scheduler


@pytest.fixture
def in_process(web_app, engine):
    """The embedded shape: the scheduler in this process (as `ipam serve` starts it)."""
    sched = Scheduler(engine, web_app.config)
    sched.start()
    yield sched
    sched.stop()


def _poll(client, url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.api("GET", url).get_json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    pytest.fail(f"job {url} did not end: {job}")


def test_a_large_complaint_batch_is_a_job_run_in_process(web_app, engineer, login, in_process):
    web_app.config["IPAM_ASYNC_BYTES"] = 2000
    lines = ["address,time,category,description,reporter"]
    lines += [
        f"198.18.7.{n % 250 + 1},2026-11-0{n % 9 + 1}T10:00:00+08:00,spam,run {n},cert{n}"
        for n in range(200)
    ]
    lines.append("not-an-address,yesterday,spam,bad row,x")
    body = ("\n".join(lines) + "\n").encode()
    r = engineer.api("POST", "/api/v1/abuse/reports", data=body, content_type="text/csv")
    assert r.status_code == 202, r.get_data(as_text=True)
    job = r.get_json()
    assert job["status"] in ("queued", "running", "done") and r.headers["Location"] == job["poll"]
    done = _poll(engineer, job["poll"])
    assert done["status"] == "done", done
    assert done["summary"]["stored"] + done["summary"]["duplicates"] == 200
    assert done["summary"]["rejected"] == 1  # the bad row, not the batch
    assert login("yunfan").api("GET", job["poll"]).status_code == 403  # customers: not theirs


def test_the_embedded_product_never_loads_celery(tmp_path):
    """A process of its own (others in this run use a broker): the app with its pages, the
    scheduler's dispatch and a queued job run in-process, and no Celery module loaded."""
    code = (
        "import sys\n"
        "from web import create_app, add_web\n"
        "from web.cli import init_database\n"
        f"app = create_app({{'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path}/e.sqlite3',"
        " 'SECRET_KEY': 'x'})\n"
        "add_web(app)\n"
        "with app.app_context():\n"
        "    init_database()\n"
        "    from web.extensions import db\n"
        "    from ipam import jobs\n"
        "    from ipam.db import transaction\n"
        "    from ipam.jobs import scheduler\n"
        "    with transaction(db.session):\n"
        "        row = jobs.enqueue(db.session, 'release_quarantine', run_by='t')\n"
        "    done = jobs.run_queued(db.engine, row.id, app.config, run_by='t')\n"
        "    assert done.status.value == 'done', done.error\n"
        "print('celery' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_small_batch_still_answers_at_once(web_app, engineer):
    body = b"address,time,category,description,reporter\n198.18.7.9,2026-11-01T10:00:00Z,spam,x,y\n"
    r = engineer.api("POST", "/api/v1/abuse/reports", data=body, content_type="text/csv")
    assert r.status_code == 201


def test_a_report_issued_asynchronously_names_what_it_issued(web_app, login, in_process):
    auditor = login("auditor")
    bad = auditor.api(
        "POST", "/api/v1/reports/nonesuch/issue", json={"format": "csv"},
        headers={"Prefer": "respond-async"},
    )  # fmt: skip
    assert bad.status_code == 404  # refused at once, no job made
    r = auditor.api(
        "POST", "/api/v1/reports/ip_filing/issue", json={"format": "csv", "lang": "zh"},
        headers={"Prefer": "respond-async"},
    )  # fmt: skip
    assert r.status_code == 202, r.get_data(as_text=True)
    done = _poll(auditor, r.get_json()["poll"])
    assert done["status"] == "done", done
    issued = auditor.api("GET", f"/api/v1/issued/{done['summary']['issued']}")
    assert (
        issued.status_code == 200
        and issued.headers["X-Content-SHA256"] == done["summary"]["sha256"]
    )


def test_a_failed_job_says_why_in_the_callers_language(web_app, engine, login):
    from sqlalchemy.orm import Session

    from ipam import jobs
    from ipam.db import transaction

    with Session(engine, expire_on_commit=False) as s, transaction(s):
        row = jobs.enqueue(s, "issue_report", run_by="t", args={
            "name": "nonesuch", "args": {}, "format": "csv", "lang": "zh", "actor": "t",
        })  # fmt: skip
    jobs.run_queued(engine, row.id, web_app.config, run_by="t")
    auditor = login("auditor")
    en = auditor.api("GET", f"/api/v1/jobs/{row.id}", headers={"Accept-Language": "en"})
    zh = auditor.api("GET", f"/api/v1/jobs/{row.id}", headers={"Accept-Language": "zh"})
    assert en.get_json()["status"] == "failed" and "no report" in en.get_json()["error"]
    assert "no report" not in zh.get_json()["error"] and "nonesuch" in zh.get_json()["error"]
