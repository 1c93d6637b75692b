"""A realistic demo ledger, replayed in time order through the normal operations.

Addresses come only from 198.18.0.0/15 and 2001:db8::/32 (the ranges the
probe lab serves). 198.18.7.9 is sub-leased by 北京云帆 to 北京蜂巢 on
2026-01-01 and has changed hands since; 深圳远航 exited ten days ago and its
block is in quarantine.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import (
    allocation,
    change_requests,
    customers,
    leasing,
    pools,
    probing,
    reclamation,
    sites,
    users,
)
from .models import AbuseCase, Pool


def _t(text: str) -> datetime:
    return (
        datetime.fromisoformat(text).replace(tzinfo=UTC)
        if "+" not in text
        else datetime.fromisoformat(text)
    )


# Demo logins (username, password, role, customer): printed by `ipam serve` on the demo.
DEMO_USERS = (
    ("admin", "demo-admin-pass", "admin", None),
    ("engineer", "demo-engineer-pass", "engineer", None),
    ("auditor", "demo-auditor-pass", "auditor", None),
    ("yunfan", "demo-customer-pass", "customer", "91110108MA01C8XK7H"),
    ("xinghe", "demo-customer-pass", "customer", "上海星河数据服务有限公司"),
)


def seed(session: Session, *, actor: str = "demo", echo=print, abuse: bool = True) -> bool:
    """Seed the demo unless pools exist already; return whether it seeded.

    abuse=False leaves out the demo's complaints and cases (for tests of the intake).
    """
    if session.execute(select(Pool.id).limit(1)).first():
        return False
    now = datetime.now(UTC)

    agg = pools.add_pool(session, "198.18.0.0/15", "CN-North IPv4 aggregate", actor=actor)
    dc1 = pools.add_pool(
        session,
        "198.18.0.0/16",
        "Beijing DC1",
        actor=actor,
        description="Beijing Yizhuang data centre",
    )
    dc2 = pools.add_pool(
        session,
        "198.19.0.0/16",
        "Shanghai DC2",
        actor=actor,
        description="Shanghai Waigaoqiao data centre",
    )
    pools.add_pool(session, "2001:db8::/32", "CN-North IPv6 aggregate", actor=actor)
    v6 = pools.add_pool(session, "2001:db8:100::/40", "Beijing DC1 IPv6", actor=actor)
    del agg

    yunfan = customers.add_customer(
        session,
        {
            "name": "北京云帆网络科技有限公司",
            "uscc": "91110108MA01C8XK7H",
            "kind": "isp",
            "isp_licence_number": "B1-20180456",
            "isp_licence_scope": "互联网接入服务 北京市",
            "isp_licence_expires": "2028-06-30",
            "icp_number": "京ICP备18004562号",
            "domains": ["yunfan.example"],
            "connected_on": "2025-03-10",
            "psb_filing_number": "11010802025001",
            "psb_filed_on": "2025-03-20",
            "responsible_persons": [
                {"name": "王建国", "id_number": "110105198803151232", "phone": "13801012345"}
            ],
            "contacts": [
                {
                    "name": "张伟",
                    "role": "abuse",
                    "phone": "13800138000",
                    "email": "abuse@yunfan.example",
                }
            ],
        },
        actor=actor,
        at=_t("2025-03-01T02:00:00"),
    )
    xinghe = customers.add_customer(
        session,
        {
            "name": "上海星河数据服务有限公司",
            "uscc": "91310115MA1K4QXT25",
            "kind": "hosting",
            "icp_number": "沪ICP备19012345号",
            "domains": ["xinghe.example"],
            "connected_on": "2025-04-01",
            "psb_filing_number": "31011502025007",
            "psb_filed_on": "2025-04-10",
            "contacts": [
                {
                    "name": "陈静",
                    "role": "abuse",
                    "phone": "13916001234",
                    "email": "noc@xinghe.example",
                }
            ],
        },
        actor=actor,
        at=_t("2025-04-01T01:00:00"),
    )
    qingmu = customers.add_customer(
        session,
        {
            "name": "杭州青木电子商务有限公司",
            "uscc": "91330106MA2B1R9L4C",
            "kind": "enterprise",
            "icp_number": "浙ICP备20031234号",
            "domains": ["qingmu.example"],
            "connected_on": "2025-05-15",
            "contacts": [
                {
                    "name": "刘洋",
                    "role": "technical",
                    "phone": "057188001234",
                    "email": "it@qingmu.example",
                }
            ],
        },
        actor=actor,
        at=_t("2025-05-15T03:00:00"),
    )
    yuanhang = customers.add_customer(
        session,
        {
            "name": "深圳远航信息技术有限公司",
            "uscc": "91440300MA5F6N2P8G",
            "kind": "hosting",
            "domains": ["yuanhang.example"],
            "connected_on": "2025-09-01",
            "contacts": [
                {
                    "name": "黄磊",
                    "role": "abuse",
                    "phone": "13510001234",
                    "email": "abuse@yuanhang.example",
                }
            ],
        },
        actor=actor,
        at=_t("2025-09-01T01:00:00"),
    )

    a1 = allocation.allocate(
        session,
        dc1,
        yunfan,
        prefix="198.18.7.0/24",
        purpose="access customers, Chaoyang",
        actor=actor,
        at=_t("2025-03-10T02:00:00"),
    )
    allocation.allocate(
        session,
        dc2,
        xinghe,
        prefixlen=24,
        purpose="shared hosting",
        actor=actor,
        at=_t("2025-04-02T02:00:00"),
    )
    allocation.allocate(
        session,
        v6,
        xinghe,
        prefixlen=48,
        purpose="hosting IPv6",
        actor=actor,
        at=_t("2025-04-02T02:05:00"),
    )
    allocation.allocate(
        session,
        dc2,
        qingmu,
        prefix="198.19.4.0/28",
        purpose="web shop",
        actor=actor,
        at=_t("2025-05-16T02:00:00"),
    )
    for _ in range(3):
        allocation.allocate(
            session,
            v6,
            qingmu,
            prefixlen=64,
            purpose="office networks",
            actor=actor,
            at=_t("2025-05-16T02:10:00"),
        )

    fengchao = leasing.register_sublessee(
        session,
        yunfan,
        {
            "kind": "organisation",
            "name": "北京蜂巢创意文化传媒有限公司",
            "id_type": "uscc",
            "id_number": "91110105MA04D7HJ3W",
            "contact_person": "赵敏",
            "phone": "13661234567",
            "email": "ops@fengchao.example",
            "address": "北京市朝阳区酒仙桥路10号",
            "purpose": "企业官网与视频点播",
            "domains": ["fengchao.example", "video.fengchao.example"],
        },
        actor=actor,
        at=_t("2025-06-20T06:00:00"),
    )
    leasing.sublease(
        session, a1, fengchao, prefix="198.18.7.8/29", actor=actor, at=_t("2025-07-01T00:00:00")
    )

    d1 = allocation.allocate(
        session,
        dc2,
        yuanhang,
        prefix="198.19.10.0/24",
        purpose="VPS hosting",
        actor=actor,
        at=_t("2025-09-05T02:00:00"),
    )
    del d1

    # The abuse contact changes later: attribution for 2026-01-01 still names 张伟.
    customers.update_customer(
        session,
        yunfan,
        {
            "contacts": [
                {
                    "name": "李娜",
                    "role": "abuse",
                    "phone": "13900139000",
                    "email": "abuse@yunfan.example",
                }
            ],
        },
        actor=actor,
        at=_t("2026-02-01T02:00:00"),
    )
    reclamation.reclaim(
        session,
        yunfan,
        actor=actor,
        at=_t("2026-03-15T02:00:00"),
        reason="clause 11: repeated spam complaints from 198.18.7.8/29; sublessee not cooperating",
        quarantine_days=30,
    )
    reclamation.release_quarantine(session, actor=actor, at=_t("2026-04-20T02:00:00"))

    a2 = allocation.allocate(
        session,
        dc1,
        xinghe,
        prefix="198.18.7.0/25",
        purpose="dedicated servers",
        actor=actor,
        at=_t("2026-05-06T02:00:00"),
    )
    liming = leasing.register_sublessee(
        session,
        xinghe,
        {
            "kind": "person",
            "name": "李明",
            "id_type": "resident_id",
            "id_number": "310115199207084568",
            "contact_person": "李明",
            "phone": "13788889999",
            "email": "liming@mail.example",
            "address": "上海市浦东新区张江路88号",
            "purpose": "个人博客（已取得专项审批）",
            "domains": ["liming-blog.example"],
        },
        actor=actor,
        at=_t("2026-05-20T02:00:00"),
    )
    leasing.sublease(
        session, a2, liming, prefix="198.18.7.9", actor=actor, at=_t("2026-06-01T00:00:00")
    )
    allocation.allocate(
        session,
        dc1,
        yunfan,
        prefixlen=26,
        purpose="access customers, reduced",
        actor=actor,
        at=_t("2026-06-10T02:00:00"),
    )

    _sites(session, actor, xinghe, qingmu, liming)
    reclamation.customer_exit(
        session,
        yuanhang,
        actor=actor,
        at=now - timedelta(days=10),
        quarantine_days=30,
        note="contract ended; customer exited",
    )
    for username, password, role, customer in DEMO_USERS:
        users.create_user(session, username, password, role, customer=customer, actor=actor)
    change_requests.submit(
        session,
        xinghe,
        "customer",
        {"icp_number": "沪ICP备20012345号-2"},
        reason="new ICP filing number after the site moved",
        actor="user:xinghe",
    )
    # Clause 19 investigations; `ipam lab up` gives them a network to probe.
    probing.add_schedule(
        session,
        {
            "name": "DC1 sweep",
            "pool": dc1.id,
            "cron": "*/2 * * * *",
            "dark_after": 2,
            "methods": ["icmp", "tcp", "dns", "blocklist"],
            "tcp_ports": [22, 80, 443],
        },
        actor=actor,
    )
    probing.add_schedule(
        session,
        {
            "name": "DC2 sweep",
            "pool": dc2.id,
            "cron": "*/2 * * * *",
            "dark_after": 2,
            "methods": ["icmp", "dns", "blocklist"],
        },
        actor=actor,
    )
    probing.add_schedule(
        session,
        {
            "name": "星河 IPv6",
            "pool": v6.id,
            "cron": "*/5 * * * *",
            "methods": ["icmp", "tcp", "dns"],
            "tcp_ports": [443],
        },
        actor=actor,
    )
    if abuse:
        _abuse(session, actor)
    echo(
        "demo seeded: 5 pools, 4 customers, 2 sublessees, 4 sites, 5 users, "
        "3 probe schedules, 4 abuse cases, 1 incident, history since 2025-03"
    )
    return True


def _sites(session: Session, actor: str, xinghe, qingmu, liming) -> None:
    """The sites register (clauses 2-4, 6): two in order, two that raise findings."""
    sites.add_site(
        session,
        xinghe,
        {
            "name": "星河云主机官网", "domain": "xinghe.example",
            "urls": ["https://www.xinghe.example/"], "icp_number": "沪ICP备20012345号-1",
            "category": "ecommerce", "addresses": ["198.19.0.10"],
            "admin_accounts": [{"account": "admin@xinghe.example", "name": "陈静",
                                "phone": "+8613912341234"}],
        },
        actor=actor,
        at=_t("2025-04-10T02:00:00"),
    )  # fmt: skip
    sites.add_site(
        session,
        xinghe,
        {
            "name": "李明的博客", "domain": "liming-blog.example",
            "urls": ["https://liming-blog.example/"], "icp_number": "沪ICP备2026000001号",
            "category": "general", "interactive": "blog", "addresses": ["198.18.7.9"],
            "sublessee_id": liming.id,
            "admin_accounts": [{"account": "liming", "name": "李明", "phone": "13712349999"}],
        },
        actor=actor,
        at=_t("2026-06-02T00:00:00"),
    )  # fmt: skip
    sites.add_site(
        session,
        xinghe,
        {
            "name": "星河社区论坛", "domain": "bbs.xinghe.example", "category": "general",
            "interactive": "forum", "addresses": ["198.19.0.10"],
            "admin_accounts": [{"account": "moderator"}],
        },
        actor=actor,
        at=_t("2026-09-01T02:00:00"),
    )  # fmt: skip
    sites.add_site(
        session,
        qingmu,
        {
            "name": "青木在线课堂", "domain": "class.qingmu.example",
            "icp_number": "浙ICP备2026012345号-1", "category": "education",
            "addresses": ["198.19.4.1"],
        },
        actor=actor,
        at=_t("2026-06-01T02:00:00"),
    )  # fmt: skip


DEMO_COMPLAINTS = """address,time,category,description,reporter
198.18.7.9,2026-01-01T10:30:00+08:00,spam,bulk mail for a loan scheme,abuse@mailbox.example
198.18.7.9,2026-01-01T11:45:00+08:00,spam,same campaign,abuse@mailbox.example
198.18.7.9,2026-07-02T03:00:00+08:00,attack,SSH password guessing,soc@cert.example
198.19.0.1,2026-11-20T10:00:00+08:00,malware,C2 beacon observed,cert@cert.example
198.19.4.5,2026-10-01T09:00:00+08:00,infringement,pirated video streams,legal@studio.example
198.18.9.20,2026-11-01T00:00:00+08:00,attack,port scans from unallocated space,soc@cert.example
"""


def _abuse(session: Session, actor: str) -> None:
    """Complaints attributed at their own times, and cases in several states."""
    from .abuse import cases, incidents, ingest

    ingest.ingest(session, DEMO_COMPLAINTS.encode(), actor=actor, kind="csv")
    by_note = {c.category.value: c for c in session.execute(select(AbuseCase)).scalars()}
    cases.transition(session, by_note["spam"].id, "notify", actor=actor)
    cases.transition(
        session,
        by_note["spam"].id,
        "resolve",
        actor=actor,
        comment="sublessee 北京蜂巢 removed the mailer; addresses later reclaimed",
    )
    cases.transition(session, by_note["attack"].id, "notify", actor=actor)
    cases.customer_answer(
        session,
        by_note["attack"].id,
        "answered",
        "李明's server was compromised; rebuilt",
        actor="user:xinghe",
    )
    cases.transition(session, by_note["malware"].id, "notify", actor=actor)
    cases.propose_sanction(
        session, by_note["infringement"].id, "repeated infringement notices", actor=actor
    )
    incident = incidents.declare(
        session,
        title="Botnet controller on 198.19.0.1",
        category="malware",
        hours=12,
        case=by_note["malware"].id,
        description="CERT reports a C2 beacon from a server of 上海星河; clause 16 applies.",
        actor=actor,
    )
    incidents.log_action(
        session, incident.id, "measure", "198.19.0.1 null-routed at the DC2 edge", actor=actor
    )


def untouched_logins(session: Session) -> list[tuple[str, str, str]]:
    """(username, password, role) of the demo logins whose password was never changed.

    Read from the audit log (a "user.password" entry marks a change), so starting
    the server hashes nothing; a deployment that changed them shows none.
    """
    from .models import AuditLog, User

    names = [u for u, _, _, _ in DEMO_USERS]
    rows = session.execute(
        select(User.username, User.id).where(User.username.in_(names), User.active)
    ).all()
    found = {name: user_id for name, user_id in rows}
    changed = set(
        session.scalars(
            select(AuditLog.object_id).where(
                AuditLog.object_type == "user_account",
                AuditLog.object_id.in_(list(found.values()) or [0]),
                AuditLog.action == "user.password",
            )
        )
    )
    return [
        (name, password, str(role))
        for name, password, role, _ in DEMO_USERS
        if name in found and found[name] not in changed
    ]
