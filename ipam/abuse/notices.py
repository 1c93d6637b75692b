"""Reply templates for the notice a customer receives about an abuse case.

The notice is written in Chinese first, then English, with times in the
provider's zone. What the customer is asked to do depends on the category; an
engineer may pick another template and add a note of their own.
"""

from __future__ import annotations

# category (or "general") -> (Chinese, English): what the customer is asked to do.
TEMPLATES: dict[str, tuple[str, str]] = {
    "general": (
        "请核查上述地址的使用情况，停止违反协议的行为，并在答复期限前告知处理结果。",
        "Please check how the address above is used, stop what breaks the agreement and "
        "tell us what you did before the deadline.",
    ),
    "spam": (
        "上述地址发送了垃圾邮件。请立即停止发送，检查是否有主机被入侵或开放转发，"
        "并在答复期限前告知处理结果（协议第十一条）。",
        "The address above sent spam. Stop it now, check for compromised hosts or open "
        "relays, and tell us what you did before the deadline (clause 11).",
    ),
    "attack": (
        "上述地址对他人发起了网络攻击。请立即断开相关主机，查明原因，"
        "并在答复期限前告知处理结果（协议第十条）。",
        "The address above attacked others. Disconnect the host now, find the cause and "
        "tell us what you did before the deadline (clause 10).",
    ),
    "malware": (
        "上述地址传播恶意程序或作为僵尸网络控制端。请立即隔离相关主机并清除恶意程序，"
        "并在答复期限前告知处理结果。",
        "The address above spreads malware or controls a botnet. Isolate the host, remove "
        "the malware and tell us what you did before the deadline.",
    ),
    "infringement": (
        "上述地址涉嫌侵犯他人知识产权。请核实并删除侵权内容，并在答复期限前告知处理结果。",
        "The address above is reported to infringe others' rights. Check and remove the "
        "content and tell us what you did before the deadline.",
    ),
    "illegal_content": (
        "上述地址涉嫌传播违法信息。请立即停止传播、保存有关记录，"
        "并在答复期限前告知处理结果（协议第七条）。",
        "The address above is reported to spread illegal content. Stop it now, keep the "
        "records and tell us what you did before the deadline (clause 7).",
    ),
}


def template_for(key: str | None, category: str) -> tuple[str, str]:
    """The chosen template, else the category's, else the general one."""
    return TEMPLATES.get(key or "") or TEMPLATES.get(category) or TEMPLATES["general"]
