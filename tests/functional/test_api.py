"""The JSON API: one error shape for every failure, each status used as meant, and flows."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ipam import audit


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["message"]
    return body["error"]


def test_400_for_a_body_that_is_not_a_json_object(engineer, same):
    with same():
        r = engineer.api("POST", "/api/v1/pools", data="{not json", content_type="application/json")
        assert error_of(r, 400)["code"] == "bad_request"
        r = engineer.api("POST", "/api/v1/pools", json=[1, 2])
        assert "JSON 对象" in error_of(r, 400)["message"]


def test_401_without_credentials_and_with_a_revoked_token(login, web_app, same):
    anon = web_app.test_client()
    r = anon.get("/api/v1/pools")
    assert error_of(r, 401)["code"] == "unauthorized"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    admin = login("admin")
    made = admin.api("POST", "/api/v1/tokens", json={"name": "script"})
    assert made.status_code == 201
    secret, token_id = made.get_json()["token"], made.get_json()["id"]
    bearer = {"Authorization": f"Bearer {secret}"}
    assert anon.get("/api/v1/me", headers=bearer).get_json()["username"] == "admin"
    # A token needs no CSRF token and sets no session cookie.
    r = anon.post("/api/v1/pools", json={}, headers=bearer)
    assert error_of(r, 422)["field"] == "prefix"
    assert "Set-Cookie" not in r.headers
    assert admin.api("DELETE", f"/api/v1/tokens/{token_id}").status_code == 200
    with same():
        assert error_of(anon.get("/api/v1/me", headers=bearer), 401)["code"] == "unauthorized"
        bad = {"Authorization": "Bearer ipam_made-up"}
        assert error_of(anon.get("/api/v1/me", headers=bad), 401)
    listed = admin.api("GET", "/api/v1/tokens").get_json()["items"]
    assert [t["revoked_at"] is not None for t in listed] == [True]
    assert secret not in str(listed)  # the secret itself is never listed again


def test_403_for_auditor_writes_and_wrong_roles(login, world, same):
    auditor = login("auditor")
    with same():
        r = auditor.api(
            "POST",
            "/api/v1/allocations",
            json={"pool": world["pool_id"], "customer": world["a"], "prefixlen": 30},
        )
        assert "只读" in error_of(r, 403)["message"]
        r = login("yunfan").api("POST", "/api/v1/pools", json={"prefix": "198.18.0.0/24"})
        assert error_of(r, 403)["code"] == "forbidden"


def test_404_unknown_ids_and_other_customers_objects(login, engineer, world, same):
    with same():
        assert error_of(engineer.api("GET", "/api/v1/allocations/999999"), 404)["field"]
        assert error_of(engineer.api("GET", "/api/v1/nowhere"), 404)["code"] == "not_found"
        foreign = login("xinghe").api("GET", f"/api/v1/customers/{world['a']}")
        missing = login("xinghe").api("GET", "/api/v1/customers/999999")
        # Another customer's object and a missing one look the same.
        assert error_of(foreign, 404)["code"] == error_of(missing, 404)["code"]
        assert "北京云帆" not in foreign.get_data(as_text=True)


def test_405_for_a_method_the_route_does_not_take(engineer):
    assert error_of(engineer.api("PUT", "/api/v1/pools"), 405)["code"] == "method_not_allowed"


def test_409_conflict_and_exhaustion(engineer, world, same):
    r = engineer.api("POST", "/api/v1/pools", json={"prefix": "198.18.250.0/30", "name": "tiny"})
    assert r.status_code == 201, r.get_data(as_text=True)
    tiny = r.get_json()["id"]
    for _ in range(4):
        r = engineer.api("POST", "/api/v1/allocations", json={"pool": tiny, "customer": world["a"]})
        assert r.status_code == 201
    with same():
        r = engineer.api("POST", "/api/v1/allocations", json={"pool": tiny, "customer": world["a"]})
        assert error_of(r, 409)["code"] == "pool_exhausted"
        r = engineer.api(
            "POST",
            "/api/v1/allocations",
            json={"pool": tiny, "customer": world["b"], "prefix": "198.18.250.1"},
        )
        err = error_of(r, 409)
        assert err["code"] == "address_conflict" and err["field"] == "prefix"


def test_422_names_the_field_and_changes_nothing(engineer, login, world, same):
    cases = [
        (
            "POST",
            "/api/v1/allocations",
            {"pool": world["pool_id"], "customer": world["a"], "prefix": "198.18.7.1/24"},
            "prefix",
        ),
        (
            "POST",
            "/api/v1/allocations",
            {"pool": world["pool_id"], "customer": world["a"], "prefixlen": 33},
            "prefixlen",
        ),
        (
            "POST",
            "/api/v1/customers",
            {"name": "X", "uscc": "91110108MA01C8XK7A", "kind": "hosting"},
            "uscc",
        ),
        ("PATCH", f"/api/v1/customers/{world['a']}", {"status": "exited"}, "status"),
        ("GET", "/api/v1/attribution?address=198.18.7.9&at=2026-01-01T00:00:00", None, "at"),
        ("GET", "/api/v1/attribution", None, "address"),
        ("GET", "/api/v1/allocations?limit=0", None, "limit"),
        ("GET", "/api/v1/allocations?current=maybe", None, "current"),
    ]
    with same():
        for method, url, body, field in cases:
            err = error_of(engineer.api(method, url, json=body), 422)
            assert err["field"] == field, (url, err)
            assert err["code"] == "validation_error"
        r = login("yunfan").api(
            "POST",
            "/api/v1/sublessees",
            json={
                "kind": "person",
                "name": "李四",
                "id_type": "resident_id",
                "id_number": "110105198803151233",
                "contact_person": "李四",
                "phone": "13900001111",
                "email": "l@example.com",
                "address": "北京",
                "purpose": "blog",
            },
        )
        err = error_of(r, 422)
        assert err["field"] == "id_number" and "校验码错误（GB 11643）" in err["message"]


def test_next_free_allocation_and_lists_with_pagination(engineer, world):
    made = []
    for _ in range(3):
        r = engineer.api(
            "POST",
            "/api/v1/allocations",
            json={"pool": world["pool_id"], "customer": world["a"], "prefixlen": 29},
        )
        assert r.status_code == 201
        made.append(r.get_json())
    assert all(m["prefix"].endswith("/29") and m["customer_id"] == world["a"] for m in made)
    assert len({m["prefix"] for m in made}) == 3
    seen, url = [], f"/api/v1/allocations?customer={world['a']}&limit=2"
    while url:
        page = engineer.api("GET", url).get_json()
        assert len(page["items"]) <= 2
        seen += [a["id"] for a in page["items"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == page["total"] >= 4
    assert {m["id"] for m in made} <= set(seen)
    held = engineer.api("GET", "/api/v1/allocations?contains=198.18.7.9").get_json()["items"]
    assert [a["prefix"] for a in held] == ["198.18.7.0/25"]


def test_customer_sees_only_its_own_lists(login, world):
    mine = login("yunfan")
    for url in (
        "/api/v1/allocations",
        "/api/v1/sublessees",
        "/api/v1/customers",
        "/api/v1/change-requests",
        "/api/v1/subleases?current=all",
    ):
        items = mine.api("GET", url).get_json()["items"]
        owners = {
            i.get("customer_id", i.get("id"))
            for i in items
            if "customer_id" in i or url.endswith("customers")
        }
        assert owners <= {world["a"]}, url
    # Asking for another customer's list by name is refused, not widened.
    r = mine.api("GET", f"/api/v1/allocations?customer={world['b']}")
    assert r.status_code == 404
    # Attribution: its own address answers, another customer's does not.
    other = mine.api("GET", "/api/v1/attribution?address=198.18.7.9")
    assert other.status_code == 404 and "上海星河" not in other.get_data(as_text=True)
    then = mine.api("GET", "/api/v1/attribution?address=198.18.7.9&at=2026-01-01T00:00:00%2B08:00")
    assert then.status_code == 200 and then.get_json()["customer"]["id"] == world["a"]
    assert "13800138000" not in then.get_data(as_text=True)  # masked


def test_reveal_is_audited_and_needs_a_reason(engineer, engine):
    url = "/api/v1/attribution?address=198.18.7.9&at=2026-01-01T00:00:00%2B08:00&reveal=true"
    assert error_of(engineer.api("GET", url), 422)["field"] == "reason"
    r = engineer.api("GET", url + "&reason=police%20request%20123")
    assert r.status_code == 200
    with Session(engine) as s:
        assert audit.verify(s).ok
        from sqlalchemy import select

        from ipam.models import AuditLog

        last = s.execute(select(AuditLog).order_by(AuditLog.seq.desc())).scalars().first()
        assert last.actor == "user:engineer" and "police request 123" in str(last.data)


def test_change_request_flow(login, world, engine):
    customer, engineer = login("yunfan"), login("engineer")
    r = customer.api(
        "POST",
        "/api/v1/change-requests",
        json={
            "target": "customer",
            "changes": {"icp_number": "京ICP备99999999号"},
            "reason": "new filing",
        },
    )
    assert r.status_code == 201
    req = r.get_json()
    assert req["status"] == "pending" and req["customer_id"] == world["a"]
    # Rejecting needs a comment; approving applies the change through update_customer.
    assert (
        error_of(engineer.api("POST", f"/api/v1/change-requests/{req['id']}/reject", json={}), 422)[
            "field"
        ]
        == "comment"
    )
    done = engineer.api(
        "POST",
        f"/api/v1/change-requests/{req['id']}/approve",
        json={"comment": "checked the MIIT record"},
    ).get_json()
    assert done["status"] == "approved" and done["decided_by"] == "user:engineer"
    now = customer.api("GET", f"/api/v1/customers/{world['a']}").get_json()
    assert now["icp_number"] == "京ICP备99999999号"
    again = engineer.api(
        "POST", f"/api/v1/change-requests/{req['id']}/reject", json={"comment": "late"}
    )
    assert error_of(again, 409)["code"] == "state_conflict"
    # A customer cannot change its filing data directly.
    assert (
        customer.api(
            "PATCH", f"/api/v1/customers/{world['a']}", json={"icp_number": "x"}
        ).status_code
        == 403
    )
    # An allocation of another customer cannot be the target.
    r = customer.api(
        "POST",
        "/api/v1/change-requests",
        json={
            "target": "allocation",
            "target_id": world["b_allocation"],
            "changes": {"purpose": "x"},
            "reason": "y",
        },
    )
    assert error_of(r, 404)["field"] == "target_id"


def test_openapi_lists_every_api_route(web_app, engineer):
    spec = engineer.api("GET", "/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    ops = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    for rule in web_app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = rule.rule.removeprefix("/api/v1")
            for a in rule.arguments:
                path = path.replace(f"<int:{a}>", "{" + a + "}").replace(f"<{a}>", "{" + a + "}")
            for m in rule.methods - {"HEAD", "OPTIONS"}:
                assert (m, path) in ops
    docs = engineer.get("/api/v1/docs")
    assert docs.status_code == 200 and "allocation_add" in docs.get_data(as_text=True)


def test_admin_disables_a_user_over_the_api_and_its_tokens_stop(login, web_app, world):
    engineer, admin = login("engineer"), login("admin")
    secret = engineer.api("POST", "/api/v1/tokens", json={"name": "x"}).get_json()["token"]
    bearer = {"Authorization": f"Bearer {secret}"}
    anon = web_app.test_client()
    assert anon.get("/api/v1/me", headers=bearer).status_code == 200
    me = anon.get("/api/v1/me", headers=bearer).get_json()
    assert (
        error_of(admin.api("PATCH", f"/api/v1/users/{me['id']}", json={"active": "no"}), 422)[
            "field"
        ]
        == "active"
    )
    r = admin.api("PATCH", f"/api/v1/users/{me['id']}", json={"active": False})
    assert r.status_code == 200 and r.get_json()["active"] is False
    assert error_of(anon.get("/api/v1/me", headers=bearer), 401)


def test_bodies_and_queries_are_checked_by_their_schemas(engineer, world, same):
    """Wrong types, unknown fields, numbers out of range, hostile input: 4xx naming the field."""
    a, pool = world["a"], world["pool_id"]
    cases = [
        ("POST", f"/api/v1/customers/{a}/reclaim", {"reason": True}, 422, "reason"),
        ("POST", "/api/v1/customers", {"name": True, "uscc": "x", "kind": "isp"}, 422, "name"),
        ("POST", "/api/v1/allocations", {"pool": pool, "customer": a, "prefixlen": 29.5}, 422,
         "prefixlen"),
        ("POST", "/api/v1/allocations", {"pool": pool, "customer": a, "prefixlen": 29, "x": 1},
         422, "x"),
        ("POST", "/api/v1/pools", {"prefix": "198.18.0.0/16", "name": "n", "colour": "red"}, 422,
         "colour"),
        ("POST", "/api/v1/allocations", {"pool": 2**64, "customer": a, "prefixlen": 29}, 422,
         "pool"),
        ("POST", "/api/v1/pools", {"prefix": "198.18.0.0/16", "name": "a\u0000b"}, 422, "name"),
        ("GET", "/api/v1/allocations?limit=99999999999999999999", None, 422, "limit"),
        ("GET", "/api/v1/allocations?colour=red", None, 422, "colour"),
        ("GET", "/api/v1/abuse/cases?state=closed", None, 422, "state"),
    ]  # fmt: skip
    with same():
        for method, url, body, status, field in cases:
            err = error_of(engineer.api(method, url, json=body), status)
            assert err["field"] == field, (url, body, err)
        deep = "[" * 100_000 + "]" * 100_000
        for raw in (deep, '{"prefix": Infinity, "name": "n"}', '{"prefix": 1e999}'):
            r = engineer.api("POST", "/api/v1/pools", data=raw, content_type="application/json")
            assert r.status_code in (400, 422), (raw[:40], r.status_code)
        assert engineer.api("GET", "/api/v1/allocations/99999999999999").status_code == 404


def test_domain_errors_speak_the_callers_language(engineer, world, same):
    """A domain error is a template with values: translated first, the values put in after."""
    body = {"pool": world["pool_id"], "customer": world["a"], "prefix": "198.18.7.1/24"}
    with same():
        zh = error_of(engineer.api("POST", "/api/v1/allocations", json=body), 422)
        en = error_of(
            engineer.api(
                "POST", "/api/v1/allocations", json=body, headers={"Accept-Language": "en"}
            ),
            422,
        )
    assert zh["message"] == "'198.18.7.1/24' 的主机位不为零；您是指 198.18.7.0/24 吗？"
    assert en["message"] == "'198.18.7.1/24' has host bits set; did you mean 198.18.7.0/24?"
    assert zh["field"] == en["field"] == "prefix"
    # A phrase inside a phrase (a reference's kind) and a schema's bound are translated too.
    zh = error_of(engineer.api("GET", "/api/v1/allocations/2147483000"), 404)
    assert zh["message"] == "没有分配 2147483000", zh
    zh = error_of(engineer.api("GET", "/api/v1/allocations?limit=0"), 422)
    assert zh["message"] == "必须 ≥ 1", zh
