"""CLI start-up benchmark: `ipam --help` and `ipam whois` wall time, and import totals.

Seeds the demo into an SQLite file of its own (and, with --pg-url reachable, a PostgreSQL
database of its own, dropped at the end), then times, each in a fresh process, --runs
times (median and max of the wall time):
  * `ipam --help`;
  * `ipam whois 198.18.7.9 --at ...` as a program (web/cli/direct.py: the database driver
    itself, without Flask or SQLAlchemy);
  * the same question through the app's session (what whois did before: the Flask app,
    SQLAlchemy and the models loaded), measured in the same run, and the ratio;
and `python -X importtime` totals (modules, microseconds) of each way in.
Nothing is asserted.

Usage: python bench/cli.py [--runs 7] [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IPAM = str(Path(sys.executable).parent / "ipam")
QUESTION = ["198.18.7.9", "--at", "2026-01-01T00:00:00+08:00"]
THROUGH_APP = (
    "import sys; from web import create_app\n"
    "app = create_app({'IPAM_CLI': True})\n"
    "out = app.test_cli_runner().invoke(args=['whois', *sys.argv[1:]])\n"
    "sys.stdout.write(out.output)\n"
)


def wall(cmd: list[str], env: dict, runs: int) -> dict:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3)}


def imports(code: str, env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True
    )
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("import time:")]
    total = sum(int(ln.split("|")[0].split(":")[1]) for ln in lines[1:])  # self times
    return {"modules": len(lines) - 1, "self_us": total}


def measure(label: str, url: str, runs: int) -> None:
    env = {**os.environ, "IPAM_DATABASE_URL": url}
    subprocess.run([IPAM, "demo"], env=env, check=True, capture_output=True)
    direct = wall([IPAM, "whois", *QUESTION], env, runs)
    app = wall([sys.executable, "-c", THROUGH_APP, *QUESTION], env, runs)
    print(f"{label}: whois as a program {direct}; through the app {app}; "
          f"{app['median_s'] / direct['median_s']:.1f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "IPAM_INSTANCE_PATH": tmp}
        os.environ.update(env)
        print("ipam --help:", wall([IPAM, "--help"], env, args.runs))
        for what, code in (
            ("--help", "import sys; sys.argv = ['ipam', '--help']\n"
                       "from web.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass"),
            ("whois as a program", "import web.cli.whois, web.cli.direct, sqlite3"),
            ("through the app", "from web import create_app; create_app({'IPAM_CLI': True});"
                                " import web.cli.whois, ipam.models"),
        ):  # fmt: skip
            print(f"imports, {what}: {imports(code, env)}")
        measure("SQLite", f"sqlite:///{tmp}/bench.sqlite3", args.runs)
        try:
            sys.path.insert(0, str(ROOT / "bench"))
            from ledger import prepare_postgres

            url = prepare_postgres(args.pg_url)
        except Exception as exc:  # noqa: BLE001 - PostgreSQL is optional here
            print(f"PostgreSQL: skipped ({type(exc).__name__}: {exc})")
            return
        measure("PostgreSQL", url, args.runs)


if __name__ == "__main__":
    main()
