"""The HTML UI through the Flask test client: forms, errors inline, security, languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ipam.models import Customer, CustomerStatus, Sublessee
from tests.conftest import table_contents
from tests.factories import resident_id
from tests.functional.conftest import CSRF as CSRF_TOKEN
from tests.functional.conftest import Client
from web import create_app


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def test_login_cookie_is_httponly_and_samesite(web_app, world):
    client = Client(web_app)
    token = client.token_from("/login")
    r = client.http.post(
        "/login",
        data={"username": "engineer", "password": "demo-engineer-pass", "csrf_token": token},
    )
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_wrong_password_and_open_redirect(web_app, world):
    client = Client(web_app)
    token = client.token_from("/login")
    r = client.http.post(
        "/login", data={"username": "engineer", "password": "nope", "csrf_token": token}
    )
    assert r.status_code == 401 and "login-error" in r.get_data(as_text=True)
    r = client.http.post(
        "/login?next=//evil.example/x",
        data={"username": "engineer", "password": "demo-engineer-pass", "csrf_token": token},
    )
    assert r.status_code == 302 and r.location == "/"


def test_login_attempts_are_rate_limited(db_url, world):
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": db_url, "SECRET_KEY": "t", "IPAM_LOGIN_LIMIT": "3 per minute"}
    )
    client = Client(app)
    token = client.token_from("/login")
    codes = [
        client.http.post(
            "/login", data={"username": "engineer", "password": "x", "csrf_token": token}
        ).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    with app.app_context():
        from web.extensions import db

        db.engine.dispose()


def test_forms_without_a_valid_csrf_token_are_refused(login, world, engine):
    engineer = login("engineer")
    with Session(engine) as s:
        before = table_contents(s)
    for token in (None, "forged"):
        data = {"customer": world["a"], "prefixlen": "30"}
        if token:
            data["csrf_token"] = token
        r = engineer.http.post(f"/pools/{world['pool_id']}/allocate", data=data)
        assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    # The API called with the session cookie (a browser) needs the token too.
    r = engineer.http.post(
        "/api/v1/allocations", json={"pool": world["pool_id"], "customer": world["a"]}
    )
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "csrf"
    with Session(engine) as s:
        assert table_contents(s) == before


def test_customer_registers_a_sublessee_with_inline_errors(login, world, engine):
    customer = login("yunfan")
    form = {
        "kind": "person",
        "name": "赵六",
        "id_type": "resident_id",
        "id_number": "110105198803151233",
        "contact_person": "赵六",
        "phone": "13911112222",
        "email": "zhao@example.com",
        "address": "北京市朝阳区",
        "purpose": "个人网站",
        "domains": "zhao.example",
    }
    with Session(engine) as s:
        before = table_contents(s)
    r = customer.form("/sublessees/new", form)
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert 'id="id_number-error"' in page and "校验码错误（GB 11643）：应为" in page
    assert 'value="赵六"' in page  # what was typed is kept
    with Session(engine) as s:
        assert table_contents(s) == before
    r = customer.form("/sublessees/new", {**form, "id_number": resident_id()})
    assert r.status_code == 302
    page = text_of(customer.get(f"/customers/{world['a']}"))
    assert "赵六" in page
    with Session(engine) as s:
        sub = s.execute(select(Sublessee).where(Sublessee.name == "赵六")).scalar_one()
        assert sub.customer_id == world["a"]


def test_engineer_allocates_next_free_29_from_the_pool_page(login, world):
    engineer = login("engineer")
    r = engineer.form(
        f"/pools/{world['pool_id']}/allocate",
        {"customer": world["b"], "mode": "next", "prefixlen": "29"},
    )
    assert r.status_code == 302
    page = text_of(engineer.get(r.location))
    allocated = re.search(r"(198\.18\.\d+\.\d+/29)", page)
    assert allocated, page[:500]
    r = engineer.form(
        f"/pools/{world['pool_id']}/allocate",
        {"customer": world["b"], "mode": "next", "prefixlen": "12"},
    )
    assert r.status_code == 422 and 'id="prefixlen-error"' in r.get_data(as_text=True)


def test_exit_needs_the_typed_confirmation(login, world, engine):
    engineer = login("engineer")
    r = engineer.form(f"/customers/{world['a']}/exit", {"confirm": "yes"})
    assert r.status_code == 422
    with Session(engine) as s:
        assert s.get(Customer, world["a"]).status == CustomerStatus.ACTIVE
    r = engineer.form(f"/customers/{world['a']}/exit", {"confirm": world["a_uscc"]})
    assert r.status_code == 302
    with Session(engine) as s:
        assert s.get(Customer, world["a"]).status == CustomerStatus.EXITED


def test_change_request_through_the_ui(login, world, engine):
    customer, engineer = login("xinghe"), login("engineer")
    r = customer.form("/change-requests/new", {"target": "customer", "reason": "x"})
    assert r.status_code == 422  # nothing to change
    r = customer.form(
        "/change-requests/new",
        {"target": "customer", "icp_number": "沪ICP备1号", "reason": "new number"},
    )
    assert r.status_code == 302
    listed = text_of(customer.get("/change-requests"))
    assert "沪ICP备1号" in listed
    with Session(engine) as s:
        from ipam.models import ChangeRequest

        req = s.execute(select(ChangeRequest).order_by(ChangeRequest.id.desc())).scalars().first()
    r = engineer.form(f"/change-requests/{req.id}/decide", {"decision": "reject"})
    assert r.status_code == 422  # rejecting needs a comment
    r = engineer.form(
        f"/change-requests/{req.id}/decide",
        {"decision": "reject", "comment": "number not in the MIIT register"},
    )
    assert r.status_code == 302
    page = text_of(customer.get(f"/change-requests/{req.id}"))
    assert "number not in the MIIT register" in page


def test_attribution_page_has_a_permalink(login):
    auditor = login("auditor")
    r = auditor.get("/attribution?address=198.18.7.9&at=2026-01-01T00:00")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "北京蜂巢创意文化传媒有限公司" in page
    link = re.search(r'id="permalink" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    again = auditor.get(link)
    assert "北京蜂巢创意文化传媒有限公司" in again.get_data(as_text=True)
    bad = auditor.get("/attribution?address=300.1.1.1")
    assert bad.status_code == 422 and 'id="address-error"' in bad.get_data(as_text=True)


def test_address_map_of_a_16(login, world):
    engineer = login("engineer")
    r = engineer.get("/map?prefix=198.18.0.0/16")
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    assert page.count('<a class="cell-') == 256  # a /16 from the counts: one cell per /24
    assert 'class="cell-allocated" title="198.18.7.0/24' in page
    small = engineer.get("/map?prefix=198.18.7.0/24").get_data(as_text=True)
    assert small.count('<a class="cell-') == 256
    # 198.18.7.9 is subleased now: its cell links to the attribution of that address.
    assert re.search(r'class="cell-subleased" title="198\.18\.7\.9[/ :]', small)


@pytest.mark.parametrize(("lang", "word"), [("zh", "概览"), ("en", "Dashboard")])
def test_both_languages(login, lang, word):
    engineer = login("engineer")
    engineer.get(f"/lang/{lang}")
    assert word in text_of(engineer.get("/"))


def test_chinese_is_the_default_and_follows_the_browser(web_app, world):
    client = Client(web_app)
    assert "登录" in text_of(client.get("/login"))
    english = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Log in" in text_of(english)


def test_customer_keeps_a_sublessee_current(login, world, engine):
    customer = login("yunfan")
    url = f"/sublessees/{world['a_sublessee']}/edit"
    page = customer.get(url).get_data(as_text=True)
    assert 'id="phone"' in page
    r = customer.form(url, {"phone": "12"})
    assert r.status_code == 422 and 'id="phone-error"' in r.get_data(as_text=True)
    r = customer.form(url, {"phone": "13700001111", "email": "new@example.com"})
    assert r.status_code == 302
    with Session(engine) as s:
        sub = s.get(Sublessee, world["a_sublessee"])
        assert sub.phone.endswith("13700001111") and sub.email == "new@example.com"
    # Another customer's sublessee cannot be opened.
    assert login("xinghe").get(url).status_code == 404


def test_early_quarantine_release_needs_a_reason(login, world, engine):
    from ipam.models import Quarantine

    engineer = login("engineer")
    url = f"/quarantine/{world['quarantine_id']}/release"
    r = engineer.form(url, {})
    assert r.status_code == 422
    with Session(engine) as s:
        assert s.get(Quarantine, world["quarantine_id"]).released_at is None
    r = engineer.form(url, {"reason": "customer returns under a new contract"})
    assert r.status_code == 302
    with Session(engine) as s:
        assert s.get(Quarantine, world["quarantine_id"]).released_at is not None


def test_admin_disables_a_user_and_users_change_their_password(login, web_app, world):
    admin = login("admin")
    r = admin.form(f"/users/{world['user_id']}", {"active": "0"})
    assert r.status_code == 302
    client = Client(web_app)
    token = client.token_from("/login")
    r = client.http.post(
        "/login", data={"username": "auditor", "password": "demo-auditor-pass", "csrf_token": token}
    )
    assert r.status_code == 401  # disabled
    admin.form(f"/users/{world['user_id']}", {"active": "1"})
    auditor = login("auditor")
    r = auditor.form("/account", {"current_password": "nope", "password": "new-password-1"})
    assert r.status_code == 422 and 'id="current_password-error"' in r.get_data(as_text=True)
    r = auditor.form(
        "/account", {"current_password": "demo-auditor-pass", "password": "new-password-1"}
    )
    assert r.status_code == 302
    fresh = Client(web_app)
    fresh.login("auditor", "new-password-1")


def test_every_answer_carries_the_security_headers(web_app, world, engineer):
    for response in (
        web_app.test_client().get("/login"),
        engineer.get("/pools"),
        engineer.api("GET", "/api/v1/pools"),
        engineer.api("GET", "/api/v1/nowhere"),
    ):
        h = response.headers
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
        assert "script-src 'self'" in h["Content-Security-Policy"]
        assert (h["X-Frame-Options"], h["X-Content-Type-Options"]) == ("DENY", "nosniff")
        assert h["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in h  # only behind HTTPS (IPAM_SECURE_COOKIES)
    # A page that sets its own, stricter policy keeps it (rejected input is shown sandboxed).
    raw = engineer.get(f"/abuse/rejected/{world['rejected_id']}/raw")
    assert "sandbox" in raw.headers["Content-Security-Policy"]


def test_next_never_leaves_the_site(web_app, world):
    client = web_app.test_client()
    for target in ("/%09/evil.example", "//evil.example", "/\\evil.example", "https://evil.example",
                   "/x%0d%0aSet-Cookie:%20a=b", "javascript:alert(1)"):  # fmt: skip
        r = client.get(f"/lang/en?next={target}")
        assert r.status_code == 302 and r.location == "/", (target, r.location)
    assert client.get("/lang/zh?next=/pools%3Fx=1").location == "/pools?x=1"


def test_a_request_past_the_size_limit_answers_413_in_the_error_shape(engineer, same):
    engineer.http.application.config["MAX_CONTENT_LENGTH"] = 1024  # put back after the test
    with same():
        r = engineer.api(
            "POST", "/api/v1/pools", data="{" + " " * 4096 + "}", content_type="application/json"
        )
        assert r.status_code == 413
        assert r.get_json()["error"]["code"] == "request_entity_too_large"


def test_a_copied_session_cookie_dies_on_logout_new_password_and_disable(web_app, world, login):
    def copied(client):
        """A second browser holding the same session cookie."""
        thief = web_app.test_client()
        cookie = client.http.get_cookie("session")
        thief.set_cookie("session", cookie.value)
        return thief

    def works(thief) -> bool:
        return thief.get("/tokens").status_code == 200

    auditor = Client(web_app, "auditor")
    thief = copied(auditor)
    assert works(thief)
    assert auditor.form("/logout").status_code == 302
    assert not works(thief)  # the copy ended with the logout
    admin = login("admin")
    for change in (
        {"password": "a-new-long-password"},
        {"active": "0"},
    ):
        engineer = Client(web_app, "engineer") if "password" in change else None
        if engineer is None:  # logs in with the new password set just before
            engineer = Client(web_app)
            engineer.login("engineer", "a-new-long-password")
        thief = copied(engineer)
        assert works(thief)
        r = admin.form(f"/users/{_user_id(web_app, 'engineer')}", change)
        assert r.status_code == 302, r.get_data(as_text=True)[:300]
        assert not works(thief) and not works(engineer.http)
    admin.form(f"/users/{_user_id(web_app, 'engineer')}", {"active": "1"})
    assert not works(thief)  # re-enabling brings no old session back


def test_a_role_change_ends_the_users_sessions_and_tokens(web_app, world, login):
    engineer = Client(web_app, "engineer")
    thief = web_app.test_client()
    thief.set_cookie("session", engineer.http.get_cookie("session").value)
    token = engineer.api("POST", "/api/v1/tokens", json={"name": "script"}).get_json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert thief.get("/tokens").status_code == 200
    assert web_app.test_client().get("/api/v1/pools", headers=bearer).status_code == 200
    admin = login("admin")
    me = _user_id(web_app, "engineer")
    r = admin.api("PATCH", f"/api/v1/users/{me}", json={"role": "auditor"})
    assert r.status_code == 200 and r.get_json()["role"] == "auditor"
    assert thief.get("/tokens").status_code != 200  # the copied cookie died
    assert engineer.get("/tokens").status_code != 200  # and the real one
    assert web_app.test_client().get("/api/v1/pools", headers=bearer).status_code == 401
    # A customer role needs its customer; the last admin keeps the role.
    r = admin.api("PATCH", f"/api/v1/users/{me}", json={"role": "customer"})
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "customer"
    r = admin.api("PATCH", f"/api/v1/users/{_user_id(web_app, 'admin')}", json={"role": "auditor"})
    assert r.status_code == 409 and r.get_json()["error"]["field"] == "role"


def _user_id(app, username: str) -> int:
    from ipam import users as users_module
    from web.extensions import db

    with app.app_context():
        return users_module.get_user(db.session, username).id


def test_the_login_limit_counts_per_account_and_says_when_to_retry(db_url, world):
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": db_url, "SECRET_KEY": "t", "IPAM_LOGIN_LIMIT": "3 per minute"}
    )
    codes, last = [], None
    for n in range(4):  # four addresses, one account: the account's limit still holds
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"127.0.0.{n + 10}"
        token = CSRF_TOKEN.search(client.get("/login").get_data(as_text=True)).group(1)
        last = client.post(
            "/login", data={"username": "auditor", "password": "x", "csrf_token": token}
        )
        codes.append(last.status_code)
    assert codes == [401, 401, 401, 429]
    assert int(last.headers["Retry-After"]) > 0
    with app.app_context():
        from web.extensions import db

        db.engine.dispose()


REDIS_ATTEMPTS = """
import sys
from tests.functional.conftest import CSRF
from web import create_app
app = create_app({"SQLALCHEMY_DATABASE_URI": sys.argv[1], "SECRET_KEY": "t",
                  "IPAM_LOGIN_LIMIT": "3 per minute", "RATELIMIT_STORAGE_URI": sys.argv[2],
                  "RATELIMIT_KEY_PREFIX": sys.argv[3]})
client = app.test_client()
token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
for _ in range(2):
    r = client.post("/login", data={"username": "engineer", "password": "x", "csrf_token": token})
    print(r.status_code)
"""


def test_two_processes_share_the_login_limit_through_redis(db_url, world):
    """What two gunicorn workers do with IPAM_RATELIMIT_STORAGE=redis://: one count."""
    import os
    import subprocess
    import sys
    import uuid

    import redis

    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail("CI must run the Redis test (.ci/run starts redis-server)")
        pytest.skip("no Redis at 127.0.0.1:6379 (start redis-server to run this test)")
    prefix = f"ipam-test-{uuid.uuid4().hex}"  # keys of this test only, removed after
    try:
        codes = []
        for _worker in range(2):
            out = subprocess.run(
                [sys.executable, "-c", REDIS_ATTEMPTS, db_url, url, prefix],
                capture_output=True, text=True, check=True,
                cwd=Path(__file__).resolve().parents[2],
            ).stdout  # fmt: skip
            codes += [int(line) for line in out.split()]
        assert codes == [401, 401, 401, 429]
    finally:
        store = redis.Redis.from_url(url)
        for key in store.scan_iter(f"*{prefix}*"):
            store.delete(key)


def test_new_refusals_are_shown_in_the_users_language(web_app, world, login, same):
    admin = login("admin")
    me = _user_id(web_app, "admin")
    with same():
        page = admin.form(f"/users/{me}", {"active": "0"})  # the demo has one admin
        assert page.status_code == 409
        assert "是最后一个启用的管理员" in page.get_data(as_text=True)
        r = admin.api("POST", "/api/v1/pools", json={"name": "x"})
        assert r.get_json()["error"] == {"code": "validation_error", "field": "prefix",
                                         "message": "必填"}  # fmt: skip
        r = admin.api("POST", "/api/v1/pools", json={"name": "x"},
                      headers={"Accept-Language": "en"})  # fmt: skip
        assert r.get_json()["error"]["message"] == "is required"


def test_the_customer_page_lists_its_allocations_a_page_at_a_time(engineer, world):
    first = engineer.get(f"/customers/{world['a']}?limit=1").get_data(as_text=True)
    assert first.count('<tr class="muted">') + first.count("<tr ><td><code>") <= 1
    assert 'id="allocations-next"' in first
    nxt = re.search(r'href="([^"]+)" id="allocations-next"', first).group(1).replace("&amp;", "&")
    second = engineer.get(nxt)
    assert second.status_code == 200 and "第 2 至 2 行" in second.get_data(as_text=True)
    assert engineer.get(f"/customers/{world['a']}?limit=0").status_code == 422


def test_the_attribution_page_takes_local_time_and_links_in_it(engineer, world):
    from urllib.parse import unquote

    def answer(at):
        page = engineer.get(f"/attribution?address=198.18.7.9&at={at}")
        return page.status_code, page.get_data(as_text=True)

    code, local = answer("2026-01-01 08:00")  # Beijing time, as the label says
    assert code == 200
    _, utc = answer("2026-01-01T00:00:00Z")
    holder = re.search(r'id="attribution-sublessee">([^<]+)', utc)
    assert holder and holder.group(1) in local
    link = re.search(r'id="permalink" href="([^"]+)"', local).group(1)
    assert unquote(link).endswith("at=2026-01-01T08:00:00+08:00")  # in the local zone
    for typed in ("2026-01-01T08:00", "2026-01-01", "2026-01-01 08:00:30"):
        assert answer(typed)[0] == 200, typed
    code, page = answer("yesterday")
    assert code == 422 and 'data-field="at"' in page


def test_the_dashboard_shows_ipv6_in_64s_and_child_pools_apart(engineer, world):
    from web.templating import size

    assert size(1 << 96, "2001:db8::/32") == "4,294,967,296 × /64"
    assert size((3 << 64) + 5, "2001:db8::/48") == "3 × /64 + 5"
    assert size(65536, "198.18.0.0/16") == "65,536"
    page = engineer.get("/").get_data(as_text=True)
    assert "× /64" in page  # the demo's IPv6 pool, not a 30-digit number
    assert not re.search(r"<td>\d{20,}</td>", page)


def test_the_dashboard_shows_deadlines_probe_health_and_whole_pools(engineer, world, engine):
    from ipam import pools, probing
    from ipam.errors import ValidationError as Refusal
    from ipam.models import Incident, ProbeSchedule

    with Session(engine) as s:  # a run refused by the scope, as the runner records it
        sched = s.get(ProbeSchedule, world["schedule_id"])
        run = probing.start_run(s, sched.id, trigger="manual", actor="test")
        refusal = Refusal(
            "{net} is outside the probe scope ({text}); nothing was sent",
            "IPAM_PROBE_SCOPE", net="198.18.0.0/16", text="loopback only",
        )  # fmt: skip
        probing.fail_run(s, run.id, refusal)
        s.commit()
        run_id, incident_id = run.id, s.get(Incident, world["incident_id"]).id
        utils = {u.name: u for u in pools.utilization_all(s)}
    page = engineer.get("/").get_data(as_text=True)
    assert f'data-incident="{incident_id}"' in page  # open: its report is due
    assert "向主管部门报告（第 16 条）" in page
    health = re.search(r'<div class="card" id="probe-health">.*?</div>', page, re.S).group(0)
    assert "198.18.0.0/16 不在探测范围（loopback only）之内；未发送任何数据包" in health
    assert "请将 IPAM_PROBE_SCOPE 设为本机可探测的前缀" in health
    assert re.search(r'data-schedule="DC1 sweep" class="state-overdue"', health)
    run_page = engineer.get(f"/probes/runs/{run_id}").get_data(as_text=True)
    assert "不在探测范围" in run_page
    # A parent pool reads as what its children hold, not as used by them.
    agg, dc1 = utils["CN-North IPv4 aggregate"], utils["Beijing DC1"]
    dc2 = next(u for name, u in utils.items() if name.startswith(("Beijing DC2", "Shanghai")))
    assert agg.allocated >= dc1.allocated + dc2.allocated > 0
    assert agg.free >= dc1.free + dc2.free and agg.used_ratio < 1
