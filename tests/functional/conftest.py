"""Web fixtures: the app on the test database, seeded with the demo, and logged-in clients."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from netaddr import IPAddress
from sqlalchemy import select
from sqlalchemy.orm import Session

from ipam import demo, findings, probing, sites
from ipam.abuse import ingest
from ipam.listing import Scope
from ipam.models import (
    AbuseCase,
    Allocation,
    ChangeRequest,
    Customer,
    Finding,
    Incident,
    Pool,
    ProbeSchedule,
    Quarantine,
    RejectedReport,
    Sanction,
    Sublease,
    Sublessee,
    User,
)
from ipam.reports import issued
from ipam.reports.base import Params
from tests.conftest import restore, reused_app, snapshot

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORDS = {name: password for name, password, _, _ in demo.DEMO_USERS}


@pytest.fixture
def web_app(db_url, engine, _apps):
    """The app on the test database; what a test changes in its config is put back after."""
    settings = {
        "SQLALCHEMY_DATABASE_URI": db_url,
        "SECRET_KEY": "test-secret",
        "TESTING": True,
        "IPAM_LOGIN_LIMIT": "100000 per minute",
    }
    yield from reused_app(_apps, engine, settings)


@pytest.fixture(scope="session")
def _worlds():
    """Per database: the seeded world's ids and rows, made once per run."""
    return {}


@pytest.fixture
def world(web_app, engine, db_url, _worlds):
    """The demo ledger and logins; ids of the objects the tests aim at.

    Seeded once per database and run; each later test gets the same rows laid
    back (restore), which is what a fresh seed would give, at a fraction of the cost.
    """
    if db_url in _worlds:
        ids, rows = _worlds[db_url]
        restore(engine, rows)
        return dict(ids)
    ids = seed_world(engine)
    _worlds[db_url] = (ids, snapshot(engine))
    return dict(ids)


def seed_world(engine) -> dict:
    """Seed the demo, one probe run with a finding and one rejected input; their ids."""
    with Session(engine) as s:
        demo.seed(s, echo=lambda *_: None)
        s.commit()
        a = s.execute(select(Customer).where(Customer.name.startswith("北京云帆"))).scalar_one()
        b = s.execute(select(Customer).where(Customer.name.startswith("上海星河"))).scalar_one()

        def first(model, *where):
            return s.execute(select(model.id).where(*where).order_by(model.id)).scalars().first()

        ids = {
            "a": a.id,
            "b": b.id,
            "a_uscc": a.uscc,
            "b_uscc": b.uscc,
            "pool_id": first(Pool, Pool.name == "Beijing DC1"),
            "a_allocation": first(
                Allocation, Allocation.customer_id == a.id, Allocation.valid_to.is_(None)
            ),
            "b_allocation": first(
                Allocation, Allocation.customer_id == b.id, Allocation.valid_to.is_(None)
            ),
            "a_sublessee": first(Sublessee, Sublessee.customer_id == a.id),
            "b_sublessee": first(Sublessee, Sublessee.customer_id == b.id),
            "a_sublease": s.execute(
                select(Sublease.id)
                .join(Allocation, Allocation.id == Sublease.allocation_id)
                .where(Allocation.customer_id == a.id)
                .order_by(Sublease.id)
            )
            .scalars()
            .first(),
            "b_request": first(ChangeRequest, ChangeRequest.customer_id == b.id),
            "quarantine_id": first(Quarantine, Quarantine.released_at.is_(None)),
            "user_id": first(User, User.username == "auditor"),
            "schedule_id": first(ProbeSchedule, ProbeSchedule.name == "DC1 sweep"),
        }
        # One finished run with one finding, as probes/runner would leave them.
        run = probing.start_run(s, ids["schedule_id"], trigger="manual", actor="test")
        squatter = Observation(4, int(IPAddress("198.18.9.20")), "icmp", True, 0.3)
        findings.record_results(s, run.id, [squatter])
        s.commit()
        ids["run_id"] = run.id
        ids["finding_id"] = first(
            Finding, Finding.status == "open", Finding.schedule_id.is_not(None)
        )
        ids["a_case"] = first(AbuseCase, AbuseCase.customer_id == a.id)
        ids["sanction_id"] = first(Sanction)
        ids["incident_id"] = first(Incident)
        ingest.ingest(s, b"address,when\n198.18.7.9,yesterday\n", actor="test", kind="csv")
        s.commit()
        ids["rejected_id"] = first(RejectedReport)
        # A site and an issued report of customer A (the demo's sites are B's and another's).
        site = sites.add_site(
            s, a, {"name": "云帆门户", "domain": "www.yunfan.example", "category": "general",
                   "icp_number": "京ICP备20180456号-1", "addresses": ["198.18.7.130"]},
            actor="test",
        )  # fmt: skip
        ids["a_site"] = site.id
        record = issued.issue(
            s, "ip_filing", Params(customer_id=a.id), "csv", "zh", actor="test", scope=Scope(a.id)
        )
        ids["a_issued"] = record.id
        s.commit()
    return ids


@dataclass(frozen=True)
class Observation:
    """The shape probes/sweep.py hands to ipam.findings (fields it reads)."""

    family: int
    address: int
    method: str
    answered: bool
    rtt_ms: float | None
    detail: str = ""


class Client:
    """A test client that logs in through the form and sends the CSRF token like a browser."""

    def __init__(self, app, username: str | None = None):
        self.http = app.test_client()
        self.username = username
        self.csrf = None
        if username:
            self.login(username, PASSWORDS[username])

    def token_from(self, url: str = "/login") -> str:
        page = self.http.get(url)
        match = CSRF.search(page.get_data(as_text=True))
        assert match, f"no CSRF token on {url}"
        return match.group(1)

    def login(self, username: str, password: str):
        token = self.token_from("/login")
        response = self.http.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        self.csrf = self.token_from("/tokens")
        return response

    def get(self, url, **kw):
        return self.http.get(url, **kw)

    def form(self, url, data=None, **kw):
        data = dict(data or {})
        if self.csrf:
            data.setdefault("csrf_token", self.csrf)
        return self.http.post(url, data=data, **kw)

    def api(self, method, url, json=None, **kw):
        headers = kw.pop("headers", {})
        if self.csrf:
            headers.setdefault("X-CSRFToken", self.csrf)
        return self.http.open(url, method=method, json=json, headers=headers, **kw)


@pytest.fixture
def login(web_app, world):
    made = {}

    def client(username: str | None = None) -> Client:
        if username not in made:
            made[username] = Client(web_app, username)
        return made[username]

    return client


@pytest.fixture
def run(cli_app):
    """`run("pool", "list")`: an ipam command through Flask's CLI runner; exit 0 unless ok=False."""
    runner = cli_app.test_cli_runner()

    def invoke(*args, ok=True):
        result = runner.invoke(args=[str(a) for a in args])
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


@pytest.fixture
def engineer(login):
    return login("engineer")


@pytest.fixture
def same(engine):
    """`with same(): ...` asserts the block changed no row of any table."""
    from contextlib import contextmanager

    from tests.conftest import table_contents

    @contextmanager
    def check():
        with Session(engine) as s:
            before = table_contents(s)
        yield
        with Session(engine) as s:
            assert table_contents(s) == before

    return check
