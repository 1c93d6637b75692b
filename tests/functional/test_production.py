"""The README's production recipe, run as written: gunicorn workers, PostgreSQL, Redis, the
scheduler. Only what must be the test's own is replaced: the database (one it creates), the
listening address (loopback, a free port) and the Redis key prefix (removed after)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import create_pg_database, pg_unavailable
from tests.factories import credit_code
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
REDIS = "redis://127.0.0.1:6379"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "prod admin pass 1"


def recipe() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("<!-- production-recipe -->") + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        block.append(line[4:])
    return block


def _needs(what: str, reason: str | None) -> None:
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the production recipe: {reason}")
        pytest.skip(reason)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_the_readme_production_recipe_starts_serves_limits_and_schedules(tmp_path):
    import redis

    _needs("PostgreSQL", pg_unavailable())
    try:
        redis.Redis.from_url(REDIS).ping()
    except redis.exceptions.ConnectionError:
        _needs("Redis", "no Redis at 127.0.0.1:6379 (start redis-server)")
    db_url, port, prefix = create_pg_database(), free_port(), f"ipam-prod-{uuid.uuid4().hex}"
    script = []
    for line in recipe():
        if line.startswith("export IPAM_DATABASE_URL="):
            line = f"export IPAM_DATABASE_URL='{db_url}'"
        line = line.replace("-b 0.0.0.0:8000", f"-b 127.0.0.1:{port}")
        script.append(line)
    assert any(line.startswith("gunicorn") for line in script), script
    assert any("IPAM_RATELIMIT_STORAGE=redis://" in line for line in script)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "IPAM_RATELIMIT_PREFIX": prefix,
        "IPAM_INSTANCE_PATH": str(tmp_path / "instance"),
        "IPAM_LOGIN_LIMIT": "",  # the default applies
    }
    env.pop("IPAM_LOGIN_LIMIT")
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", "\n".join(script)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=env, cwd=tmp_path, start_new_session=True, text=True,
    )  # fmt: skip
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()
    proc.stdin.write(f"{PASSWORD}\n{PASSWORD}\n")  # `ipam user add` asks twice
    proc.stdin.close()
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if requests.get(f"{base}/login", timeout=5).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still starting up
                pass
            assert proc.poll() is None, "".join(output)
            time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not answer:\n" + "".join(output))

        page = requests.get(f"{base}/login", timeout=5)
        assert "max-age" in page.headers["Strict-Transport-Security"]  # secure cookies: HSTS
        assert "Secure" in page.headers["Set-Cookie"]
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]

        # Several workers, and the scheduler beside them.
        masters = [p for p in _children(proc.pid) if "gunicorn" in _cmdline(p)]
        assert len(masters) == 1, [_cmdline(p) for p in _children(proc.pid)]
        assert len(_children(masters[0])) == os.cpu_count() >= 1
        assert any("ipam scheduler" in _cmdline(p) for p in _children(proc.pid))

        def ipam(*args):  # a later command of the deployment: its environment file
            return subprocess.run(
                ["bash", "-c", 'set -a && . ./ipam.env && set +a && exec ipam "$@"', "-", *args],
                env={**env, "IPAM_DATABASE_URL": db_url}, capture_output=True, text=True,
                cwd=tmp_path,
            )  # fmt: skip

        assert (tmp_path / "ipam.env").stat().st_mode & 0o077 == 0  # the secrets: owner only
        token = ipam("user", "token", "admin", "--name", "recipe test").stdout.strip()
        bearer = {"Authorization": f"Bearer {token}"}
        api = f"{base}/api/v1"
        pool = requests.post(
            f"{api}/pools", json={"prefix": "198.18.0.0/22", "name": "P"}, headers=bearer
        )
        assert pool.status_code == 201, pool.text
        customer = requests.post(
            f"{api}/customers",
            json={"name": "生产测试有限公司", "uscc": credit_code(), "kind": "hosting"},
            headers=bearer,
        )
        assert customer.status_code == 201, customer.text
        results: list[int] = []

        def allocate():
            with requests.Session() as s:
                for _ in range(10):
                    r = s.post(
                        f"{api}/allocations",
                        json={"pool": pool.json()["id"], "customer": customer.json()["id"]},
                        headers=bearer,
                    )
                    results.append(r.status_code)

        threads = [threading.Thread(target=allocate) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [201] * 80
        listed = requests.get(f"{api}/allocations?limit=200", headers=bearer).json()
        prefixes = [a["prefix"] for a in listed["items"]]
        assert len(prefixes) == len(set(prefixes)) == 80

        # The login limit, counted once across the workers in Redis: 10 a minute.
        codes, retry = [], None
        for _ in range(11):
            with requests.Session() as s:
                form = s.get(f"{base}/login", timeout=5)
                cookie = {c.name: c.value for c in form.cookies}  # sent back as a proxy would
                r = s.post(
                    f"{base}/login",
                    data={
                        "username": "admin",
                        "password": "wrong",
                        "csrf_token": CSRF.search(form.text).group(1),
                    },
                    cookies=cookie,
                    allow_redirects=False,
                    timeout=5,
                )
                codes.append(r.status_code)
                retry = r.headers.get("Retry-After")
        assert codes == [401] * 10 + [429], codes
        assert int(retry) > 0
        assert list(redis.Redis.from_url(REDIS).scan_iter(f"*{prefix}*"))  # counted in Redis

        # The scheduler holds the lease on the production database.
        engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            for _ in range(100):
                with engine.connect() as conn:
                    holder = conn.execute(text("SELECT holder FROM scheduler_lease")).scalar()
                if holder:
                    break
                time.sleep(0.1)
            assert holder, "".join(output)
        finally:
            engine.dispose()
        assert ipam("audit", "checkpoint").returncode == 0
        verify = ipam("audit", "verify")
        assert verify.returncode == 0 and "intact" in verify.stdout, verify.stdout + verify.stderr
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=10)
        proc.stdout.close()
        store = redis.Redis.from_url(REDIS)
        for key in store.scan_iter(f"*{prefix}*"):
            store.delete(key)
