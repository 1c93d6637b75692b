"""The configured SMTP server (IPAM_SMTP_HOST/PORT) as a `send` for ipam's notifications."""

from __future__ import annotations

from flask import current_app

from ipam.abuse.notify import smtp


def sender() -> str:
    return current_app.config["IPAM_ABUSE_SENDER"]


def send(msg) -> None:
    config = current_app.config
    smtp(config["IPAM_SMTP_HOST"], config["IPAM_SMTP_PORT"])(msg)
