"""The `ipam` command: a group of commands per concern, each calling one ipam/ function.

common.py holds the group and what every command shares; ledger.py, admin.py,
abuse.py and probes.py hold the commands. `ipam --help` lists ipam's commands
only, without Flask's own options.
"""

from __future__ import annotations

from .group import Launch, ipam

__all__ = ["format_attribution", "init_database", "ipam", "main", "register"]


def __getattr__(name: str):
    """format_attribution and init_database live in common.py, loaded when asked for."""
    if name in ("format_attribution", "init_database"):
        from . import common

        return getattr(common, name)
    raise AttributeError(name)


def register(app) -> None:
    """Put every ipam command on the app's CLI (what `flask`'s test runner invokes)."""
    ipam.load_all()
    for command in ipam.commands.values():
        app.cli.add_command(command)


def main() -> None:
    ipam.main(prog_name="ipam", obj=Launch())
