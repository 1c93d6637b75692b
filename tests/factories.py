"""Small factories for valid domain data (valid check digits computed, not hard-coded)."""

from __future__ import annotations

import itertools

from stdnum.cn import ric, uscc

from ipam import customers, leasing, pools

_n = itertools.count(1)


def credit_code(n: int | None = None) -> str:
    body = f"91110108MA{(next(_n) if n is None else n):07d}"
    return body + uscc.calc_check_digit(body)


def resident_id(n: int | None = None) -> str:
    body = f"11010519880315{(next(_n) if n is None else n) % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def customer(session, name=None, **over):
    data = {
        "name": name or f"测试客户{next(_n)}有限公司",
        "uscc": credit_code(),
        "kind": "hosting",
        "contacts": [
            {"name": "张伟", "role": "abuse", "phone": "13800138000", "email": "abuse@example.com"}
        ],
    }
    data.update(over)
    at = data.pop("at", None)
    return customers.add_customer(session, data, actor="test", at=at)


def sublessee(session, cust, **over):
    data = {
        "kind": "organisation",
        "name": f"第三方{next(_n)}有限公司",
        "id_type": "uscc",
        "id_number": credit_code(),
        "contact_person": "赵敏",
        "phone": "13661234567",
        "email": "ops@example.com",
        "address": "北京市朝阳区酒仙桥路10号",
        "purpose": "web hosting",
        "domains": ["example.com"],
    }
    data.update(over)
    at = data.pop("at", None)
    return leasing.register_sublessee(session, cust, data, actor="test", at=at)


def pool(session, prefix="198.18.0.0/24", name=None, **kw):
    return pools.add_pool(session, prefix, name or f"pool {prefix}", actor="test", **kw)
