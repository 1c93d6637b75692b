"""The `ipam` command group, whose commands load when they are used.

`ipam --help` and `ipam whois` should start at once: the group knows each command's
module and one-line help (COMMANDS), lists them from that, and imports a command's
module (with the web stack, the models and the parsers it needs) only to run it.
tests/functional/test_cli.py checks COMMANDS against the commands themselves.
"""

from __future__ import annotations

import importlib
import sys

import click

# command -> (its module under web.cli, its one-line help as `ipam --help` shows it)
COMMANDS: dict[str, tuple[str, str]] = {
    "abuse": ("abuse", "Abuse complaints (clauses 7-14): ingest, cases, rejected input."),
    "allocate": ("ledger", "Allocate from POOL to CUSTOMER: next free address by default."),
    "audit": ("ledger", "The tamper-evident audit log."),
    "backup": ("admin", "Write a consistent copy of the database to FILE while ipam runs."),
    "certificate": ("reports", "Signed statements of who held an address at an instant."),
    "customer": ("ledger", "Customers (Party A)."),
    "dc": ("workers", "Data centres (sites): where pools are routed and probe workers run."),
    "demo": ("admin", "Create the schema and seed the demo data (once)."),
    "end": ("ledger", "End an allocation (by id or prefix); its block goes to quarantine."),
    "end-sublease": ("ledger", "End a sublease by id."),
    "exit": (
        "ledger",
        "Customer exit: end every allocation and sublease, addresses to quarantine.",
    ),
    "finding": ("probes", "What the probes found."),
    "import": ("ledger", "Import pools, customers or allocations from a CSV file."),
    "import-undo": (
        "ledger",
        "Withdraw an allocations import that did not finish (interrupted), chunk by chunk.",
    ),
    "incident": (
        "abuse",
        "Major security incidents (clause 16): declare, log, freeze evidence, report, export.",
    ),
    "init": ("admin", "Create or upgrade the database schema (runs the migrations)."),
    "job": ("admin", "Scheduled work: what ran, and running a job now."),
    "keys": ("reports", "The Ed25519 keys that sign certificates."),
    "lab": (
        "probes",
        "The network-namespace probe lab (root only; 198.18.0.0/15 and 2001:db8::/32).",
    ),
    "list": (
        "reports",
        "A list filtered, sorted and paged, or exported whole as CSV (no NAME: the lists).",
    ),
    "pool": ("ledger", "Pools of the provider's own address space."),
    "probe": ("probes", "Probe schedules and runs (clause 19)."),
    "quarantine": ("ledger", "Addresses cooling down after reclamation."),
    "reclaim": ("ledger", "Reclaim a customer's addresses for a violation."),
    "report": (
        "reports",
        "The reports regulators ask for: `ipam report list`; `ipam report NAME --format pdf "
        "...` issues one (the same as `ipam report issue NAME`); `ipam report draft NAME` "
        "keeps none.",
    ),
    "restore": (
        "admin",
        "Load a backup FILE into an empty database, then bring its schema up to date.",
    ),
    "scheduler": (
        "probes",
        "Run the probe scheduler (production: one such process beside the web workers).",
    ),
    "search": (
        "reports",
        "Find an address or prefix, a customer (name, credit code), a sublessee, a domain, "
        "a case or incident number.",
    ),
    "serve": (
        "admin",
        "Serve the web UI and API (waitress); production uses gunicorn, see README.",
    ),
    "site": ("reports", "The sites register (clauses 2, 3, 4, 6)."),
    "sublease": ("ledger", "Sub-lease part of ALLOCATION (id or prefix) to SUBLESSEE."),
    "sublessee": ("ledger", "Third parties a customer passes addresses to (clause 19)."),
    "user": ("admin", "Logins and API tokens."),
    "whois": ("whois", "Who held ADDRESS at a time (default now)."),
    "worker": (
        "workers",
        "A Celery worker (IPAM_BROKER_URL): probe runs of one site, from inside it, and jobs.",
    ),
}


def cli_message(exc) -> str:
    """A refusal in the command line's language (web/messages.py, loaded only on an error)."""
    from ..messages import cli_message as message

    return message(exc)


class Refusal(click.ClickException):
    """Printed as "错误：…" in Chinese, "Error: …" otherwise; exit code 1."""

    def show(self, file=None) -> None:
        from ..messages import cli_language

        prefix = "错误：" if cli_language() == "zh" else "Error: "
        click.echo(prefix + self.format_message(), file=file or sys.stderr)


class Launch:
    """`ctx.obj` when `ipam` runs as a program: the Flask app is made (flask.cli.ScriptInfo)
    only for a command that needs one, so `ipam whois` never loads Flask."""

    def script_info(self):
        from flask.cli import ScriptInfo

        from .. import create_app

        return ScriptInfo(
            create_app=lambda: create_app({"IPAM_CLI": True}),
            set_debug_flag=False,
            load_dotenv_defaults=False,
        )


# Every command hangs on this group; `ipam` (main) and `flask`'s test runner both use it.
class IpamGroup(click.Group):
    """A command group that turns a refusal from ipam/ into "Error: <field>: <reason>" and
    exit 1, for every command under it (a list with a bad filter included), never a traceback;
    the top group loads its commands' modules on first use (`lazy`: COMMANDS).

    Like flask.cli.AppGroup, its commands run inside the app's context unless defined with
    `with_appcontext=False` (then they are marked `needs_app = False`); Flask itself loads
    only when such a command is defined or run."""

    def __init__(self, *args, lazy: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def command(self, *args, **kwargs):
        wrap = kwargs.pop("with_appcontext", True)

        def decorator(f):
            if wrap:
                from flask.cli import with_appcontext

                f = with_appcontext(f)
            command = click.Group.command(self, *args, **kwargs)(f)
            command.needs_app = wrap
            return command

        return decorator

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(ctx.obj, Launch) and getattr(command, "needs_app", True):
            ctx.obj = ctx.obj.script_info()
        return name, command, rest

    def invoke(self, ctx):
        from ipam.errors import IpamError

        try:
            return super().invoke(ctx)
        except IpamError as exc:
            raise Refusal(cli_message(exc)) from None
        except Exception as exc:
            from .direct import no_schema

            if no_schema(exc):  # a database nobody initialised: say what to run
                from ipam.errors import StateConflict

                refusal = StateConflict(
                    "the database has no tables yet: run `ipam init` (or `ipam demo`)",
                    "IPAM_DATABASE_URL",
                )
                raise Refusal(cli_message(refusal)) from None
            raise

    def group(self, *args, **kwargs):
        kwargs.setdefault("cls", IpamGroup)
        return click.Group.group(self, *args, **kwargs)

    def load(self, name: str) -> None:
        if name not in self.commands and name in self.lazy:
            importlib.import_module(f"web.cli.{self.lazy[name][0]}")

    def load_all(self) -> None:
        for module in sorted({m for m, _ in self.lazy.values()}):
            importlib.import_module(f"web.cli.{module}")

    def list_commands(self, ctx):
        return sorted(set(self.commands) | set(self.lazy))

    def get_command(self, ctx, name):
        self.load(name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter) -> None:
        """Click's list of commands, the unloaded ones from their COMMANDS line."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            command = self.commands.get(name)
            if command is None:
                command = click.Command(name, help=self.lazy[name][1])
            if command.hidden:
                continue
            rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


ipam = IpamGroup("ipam", help="IP address management for the leasing agreement.", lazy=COMMANDS)
