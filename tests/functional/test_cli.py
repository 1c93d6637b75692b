"""The `ipam` command, through Flask's CLI runner, on both back-ends."""

import json

import pytest
from sqlalchemy import text

from tests.factories import credit_code


def test_demo_answers_whois_at_an_instant(run):
    out = run("demo").output
    assert "demo seeded" in out
    then = run("whois", "198.18.7.9", "--at", "2026-01-01T00:00:00+08:00").output
    assert "北京云帆网络科技有限公司" in then and "北京蜂巢创意文化传媒有限公司" in then
    assert "张伟" in then and "李娜" not in then  # contacts as they were then
    assert "13800138000" not in then  # masked by default
    now = json.loads(run("whois", "198.18.7.9", "--json").output)
    assert now["customer"]["name"] == "上海星河数据服务有限公司" and now["status"] == "subleased"
    assert "already" in run("demo").output
    assert "intact" in run("audit", "verify").output
    quarantine = run("quarantine", "list").output
    assert "198.19.10.0/24" in quarantine


def test_ledger_flow_and_clear_errors(run):
    run("pool", "add", "198.18.0.0/16", "dc1")
    bad = run("pool", "add", "198.18.1.5/24", "x", ok=False)
    assert bad.exit_code == 1 and "prefix: '198.18.1.5/24' has host bits set" in bad.output
    assert "did you mean 198.18.1.0/24" in bad.output
    code = credit_code()
    run(
        "customer",
        "add",
        "--name",
        "甲公司",
        "--uscc",
        code,
        "--kind",
        "hosting",
        "--contact",
        "张伟,13800138000,a@example.com,abuse",
    )
    wrong = code[:17] + ("0" if code[17] != "0" else "1")
    bad = run("customer", "add", "--name", "乙", "--uscc", wrong, "--kind", "hosting", ok=False)
    assert "uscc:" in bad.output and "GB 32100" in bad.output
    out = run("allocate", "dc1", code, "--length", "29").output
    assert "198.18.0.0/29" in out
    run(
        "sublessee",
        "add",
        code,
        "--kind",
        "person",
        "--name",
        "李明",
        "--id-type",
        "resident_id",
        "--id-number",
        "110105198803151232",
        "--contact-person",
        "李明",
        "--phone",
        "13788889999",
        "--email",
        "l@example.com",
        "--address",
        "上海",
        "--purpose",
        "blog",
    )
    assert "198.18.0.0" in run("sublease", "198.18.0.0/29", "李明").output
    who = run("whois", "198.18.0.0").output
    assert "李明" in who and "110105198803151232" not in who
    revealed = run("whois", "198.18.0.0", "--reveal", "--reason", "PSB request").output
    assert "110105198803151232" in revealed
    out = run("exit", code, "--quarantine-days", "5").output
    assert "1 allocation(s) ended" in out
    assert "198.18.0.0/29" in run("quarantine", "list").output
    ex = run("allocate", "dc1", code, ok=False)
    assert "customer:" in ex.output and "exited" in ex.output


def test_csv_import_reports_each_bad_row(run, tmp_path):
    pools = tmp_path / "pools.csv"
    pools.write_text("prefix,name\n198.18.0.0/16,dc1\n198.18.0.5/24,bad\n2001:db8::/32,v6\n")
    out = run("import", "pools", pools, ok=False)
    assert out.exit_code == 1
    assert "row 3: prefix:" in out.output and "nothing imported" in out.output
    assert "198.18.0.0/16" not in run("pool", "list").output
    out = run("import", "pools", pools, "--skip-errors", ok=False)
    assert "imported 2 pools" in out.output
    good, bad = credit_code(), credit_code()[:17] + "I"
    customers = tmp_path / "customers.csv"
    customers.write_text(
        "name,uscc,kind,contact_name,contact_phone,contact_email\n"
        f"甲,{good},hosting,张伟,13800138000,a@example.com\n"
        f"乙,{bad},hosting,李四,12,b@example.com\n"
        f"丙,{credit_code()},reseller,王五,13800138001,c@example.com\n"
    )
    out = run("import", "customers", customers, "--skip-errors", ok=False).output
    assert "row 3: uscc:" in out and "row 4: kind:" in out and "imported 1 customers" in out
    allocs = tmp_path / "allocations.csv"
    allocs.write_text(
        "pool,customer,prefix,length,valid_from,valid_to\n"
        f"dc1,{good},198.18.1.0/24,,2025-01-01T00:00:00Z,2025-06-01T00:00:00Z\n"
        f"dc1,{good},198.18.1.0/25,,2025-07-01T00:00:00Z,\n"
        f"dc1,{good},,30,,\n"
        f"dc1,{good},198.18.1.0/26,,,\n"
    )
    out = run("import", "allocations", allocs, "--skip-errors", ok=False).output
    assert "row 5: prefix:" in out and "imported 3 allocations" in out
    then = run("whois", "198.18.1.200", "--at", "2025-03-01T00:00:00Z").output
    assert "甲" in then and "status:    allocated" in then
    # the failed rows left no audit entries behind: the chain is whole
    assert "intact" in run("audit", "verify").output
    header = tmp_path / "h.csv"
    header.write_text("prefix,colour\n")
    out = run("import", "pools", header, ok=False).output
    assert "row 1: name: column is missing" in out and "colour" in out


def test_updates_keep_old_answers(run):
    run("pool", "add", "198.18.0.0/24", "dc1")
    code = credit_code()
    run(
        "customer",
        "add",
        "--name",
        "甲公司",
        "--uscc",
        code,
        "--kind",
        "hosting",
        "--contact",
        "张伟,13800138000,a@example.com",
    )
    run("allocate", "dc1", code, "--prefix", "198.18.0.0/28")
    before = json.loads(run("whois", "198.18.0.1", "--json").output)["at"]
    run(
        "customer",
        "update",
        code,
        "--contact",
        "李娜,13900139000,b@example.com",
        "--set",
        "icp_number=京ICP备18004562号",
    )
    old = run("whois", "198.18.0.1", "--at", before).output
    new = run("whois", "198.18.0.1").output
    assert "张伟" in old and "李娜" not in old and "李娜" in new
    bad = run("customer", "update", code, "--set", "connected_on=yesterday", ok=False)
    assert bad.exit_code == 1 and "connected_on:" in bad.output
    bad = run("customer", "update", code, "--set", "nonsense", ok=False)
    assert bad.exit_code == 2 and "FIELD=VALUE" in bad.output
    run(
        "sublessee",
        "add",
        code,
        "--kind",
        "organisation",
        "--name",
        "乙",
        "--id-type",
        "uscc",
        "--id-number",
        credit_code(),
        "--contact-person",
        "赵",
        "--phone",
        "13661234567",
        "--email",
        "o@example.com",
        "--address",
        "北京",
        "--purpose",
        "web",
    )
    run("sublessee", "update", "乙", "--set", "phone=13900139000")
    bad = run("sublessee", "update", "乙", "--set", "email=nope", ok=False)
    assert "email:" in bad.output


def test_audit_verify_fails_on_tampering(run, engine):
    run("demo")
    assert "intact" in run("audit", "verify").output
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET data = '{}' WHERE seq = 7"))
    broken = run("audit", "verify", ok=False)
    assert broken.exit_code == 1 and "BROKEN at entry 7" in broken.output


def test_abuse_ingest_of_an_arf_file_and_a_maildir(run, tmp_path):
    from pathlib import Path

    samples = Path(__file__).resolve().parents[1] / "samples" / "abuse"
    run("demo")
    out = run("abuse", "ingest", samples / "arf-spam.eml").output
    assert "spam 198.18.7.9 at 2026-01-01 02:30Z (held)" in out and "1 new case(s)" in out
    cases = run("abuse", "cases").output
    assert "北京云帆网络科技有限公司 / 北京蜂巢创意文化传媒有限公司" in cases
    box = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.eml").write_bytes((samples / "xarf-0.2.eml").read_bytes())
    (box / "new" / "2.eml").write_bytes((samples / "arf-spam.eml").read_bytes())
    out = run("abuse", "ingest", box).output
    assert "1 report(s)" in out and "1 duplicate(s)" in out
    assert "上海星河数据服务有限公司 / 李明" in run("abuse", "cases").output
    broken = tmp_path / "broken.eml"
    broken.write_bytes(b"From: a@b.example\nSubject: hi\n\nplain mail\n")
    out = run("abuse", "ingest", "--format", "arf", broken).output
    assert "1 rejected" in out
    listed = run("abuse", "rejected").output
    assert "Content-Type: is not multipart/report" in listed


def test_abuse_case_commands_take_a_case_to_a_warning(run):
    run("demo")
    cases = run("abuse", "cases", "--state", "notified").output
    case_id = cases.split()[0]  # 上海星河's malware case, notified in the demo
    out = run("abuse", "case", case_id, "resolve", ok=False)
    assert out.exit_code == 1 and "comment: is required" in out.output
    out = run("abuse", "sanction", "propose", case_id, "--reason", "C2 traffic").output
    assert "warning confirmed" in out
    assert "escalated" in run("abuse", "cases", "--state", "escalated").output
    out = run("abuse", "case", case_id, "resolve", "--comment", "cleaned").output
    assert "is resolved" in out


def test_help_lists_ipams_commands_only_each_with_a_line():
    import subprocess
    import sys

    import click

    from web.cli import ipam

    shown = subprocess.run(
        [sys.executable, "-c", "from web.cli import main; main()", "--help"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "--app" not in shown and "--env-file" not in shown and "limiter" not in shown
    assert " db " not in shown and "whois" in shown and "abuse" in shown

    def walk(group, prefix=""):
        for name, command in group.commands.items():
            yield prefix + name, command
            if isinstance(command, click.Group):
                yield from walk(command, f"{prefix}{name} ")

    missing = [name for name, command in walk(ipam) if not (command.help or command.short_help)]
    assert missing == []


def test_jobs_run_now_and_every_run_is_listed(run):
    run("demo")
    assert "release_quarantine: done" in run("job", "run", "release_quarantine").output
    refused = run("job", "run", "poll_maildir", ok=False)
    assert refused.exit_code == 1 and "IPAM_ABUSE_MAILDIR: no maildir is set" in refused.output
    listed = run("job", "list").output.splitlines()
    assert [line.split()[3:5] for line in listed] == [
        ["poll_maildir", "failed"],
        ["release_quarantine", "done"],
    ]
    assert run("job", "run", "nonsense", ok=False).exit_code == 2  # not a job: click refuses


def test_audit_checkpoints_catch_a_cut_tail_an_emptied_log_and_a_forged_file(run, engine, cli_app):
    run("demo")
    assert "no checkpoint yet" in run("audit", "verify").output
    written = run("audit", "checkpoint").output
    with engine.connect() as conn:
        seq, head = conn.execute(text("SELECT seq, last_hash FROM audit_head")).one()
    assert f"checkpoint: {seq} entries, head {head}" in written
    assert "agrees with the checkpoint" in run("audit", "verify").output

    # Cut the tail and move the head back: the chain alone is consistent again.
    with engine.begin() as conn:
        prev = conn.execute(text("SELECT hash FROM audit_log WHERE seq = :s"), {"s": seq - 3})
        prev = prev.scalar_one()
        conn.execute(text("DELETE FROM audit_log WHERE seq > :s"), {"s": seq - 3})
        conn.execute(
            text("UPDATE audit_head SET seq = :s, last_hash = :h"), {"s": seq - 3, "h": prev}
        )
    cut = run("audit", "verify", ok=False)
    assert cut.exit_code == 1
    assert f"the log ends at entry {seq - 3}" in cut.output and "entries were removed" in cut.output

    # Empty both tables: an empty chain is consistent, the checkpoint says otherwise.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
        conn.execute(text("UPDATE audit_head SET seq = 0, last_hash = :g"), {"g": "0" * 64})
    emptied = run("audit", "verify", ok=False)
    assert emptied.exit_code == 1 and "the log ends at entry 0" in emptied.output

    # A forged line (a smaller seq, to excuse the cut) is not signed with the key.
    path = cli_app.config["IPAM_AUDIT_CHECKPOINTS"]
    with open(path, "a") as fh:
        fh.write(json.dumps({"seq": 0, "hash": "0" * 64, "at": "2026-01-01", "sig": "00"}) + "\n")
    forged = run("audit", "verify", ok=False)
    assert forged.exit_code == 1 and "not a checkpoint signed" in forged.output


def test_a_rewritten_chain_disagrees_with_the_checkpoint(run, engine):
    """Rewrite the whole chain consistently (as with database access): the checkpoint's
    entry no longer has the hash it recorded."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ipam import audit
    from ipam.models import AuditLog

    run("demo")
    run("audit", "checkpoint")
    with Session(engine) as s:
        prev = audit.GENESIS
        for row in s.scalars(select(AuditLog).order_by(AuditLog.seq)).all():
            if row.seq == 2:
                row.actor = "mallory"
            row.prev_hash = prev
            row.hash = prev = audit._digest(
                prev, row.seq, row.recorded_at, row.actor, row.action, row.object_type,
                row.object_id, row.data,
            )  # fmt: skip
        s.execute(text("UPDATE audit_head SET last_hash = :h"), {"h": prev})
        s.commit()
    rewritten = run("audit", "verify", ok=False)
    assert rewritten.exit_code == 1 and "the log was rewritten" in rewritten.output


def test_abuse_unattributed_lists_reports_nobody_held(run):
    run("demo")
    out = run("abuse", "unattributed").output
    assert "198.18.9.20" in out and "unattributed report(s)" in out
    assert "198.18.9.20" not in run("abuse", "unattributed", "--holding", "quarantined").output


def test_a_shadowserver_file_and_a_maildir_with_a_zipped_report(run, tmp_path):
    import io
    import zipfile

    run("demo")
    rows = (
        b"timestamp,ip,port,asn,geo,region,city,hostname,type,infection,url\n"
        b"2026-11-02 10:00:00,198.19.0.1,443,64500,CN,SH,,,tcp,andromeda,\n"
    )
    named = tmp_path / "2026-11-02-botnet_drone-asn64500.csv"
    named.write_bytes(rows)
    out = run("abuse", "ingest", named).output
    assert "198.19.0.1" in out and "1 report(s)" in out
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("2026-11-03-scan_telnet-asn64500.csv",
                         rows.replace(b"2026-11-02", b"2026-11-03"))  # fmt: skip
    import base64

    mail = (
        "From: autoreports@shadowserver.example\nSubject: report\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="z"\n\n--z\nContent-Type: text/plain\n\nhi\n'
        '--z\nContent-Type: application/zip; name="r.zip"\nContent-Transfer-Encoding: base64\n\n'
        + base64.encodebytes(packed.getvalue()).decode()
        + "--z--\n"
    ).encode()
    box = tmp_path / "box"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.shadow").write_bytes(mail)
    out = run("abuse", "ingest", box).output
    assert "198.19.0.1" in out and "1 report(s)" in out


def test_customer_add_takes_domains(run, engine):
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ipam.models import Customer

    code = credit_code()
    run("customer", "add", "--name", "域名客户有限公司", "--uscc", code, "--kind", "hosting",
        "--domain", "Example.CN", "--domain", "shop.example.cn")  # fmt: skip
    with Session(engine) as s:
        c = s.scalars(select(Customer).where(Customer.uscc == code)).one()
        assert c.domains == ["example.cn", "shop.example.cn"]
    bad = run("customer", "add", "--name", "坏域名有限公司", "--uscc", credit_code(),
              "--kind", "hosting", "--domain", "not a domain", ok=False)  # fmt: skip
    assert bad.exit_code == 1 and "domains" in bad.output


@pytest.mark.parametrize(
    ("command", "key"),
    [
        (("pool", "list"), "utilization"),
        (("customer", "list"), "uscc"),
        (("quarantine", "list"), "until"),
        (("abuse", "cases"), "state"),
        (("abuse", "unattributed"), "holding"),
        (("abuse", "rejected"), "reason"),
        (("incident", "list"), "deadline"),
        (("user", "list"), "role"),
        (("probe", "runs"), "status"),
        (("finding", "list", "--status", "all"), "kind"),
    ],
)
def test_list_commands_print_json_as_the_api_does(run, command, key):
    run("demo")
    out = run(*command, "--json").output
    rows = json.loads(out)
    assert isinstance(rows, list)
    if rows:
        assert key in rows[0]
    assert "13800138000" not in out  # personal data masked as in the API


@pytest.mark.parametrize(
    "args",
    [
        ("finding", "list", "--kind", "nonsense"),
        ("abuse", "cases", "--state", "nonsense"),
        ("incident", "list", "--state", "nonsense"),
        ("probe", "runs", "--schedule", "nonsense"),
    ],
)
def test_a_bad_filter_is_an_error_line_not_a_traceback(run, args):
    out = run(*args, ok=False)
    assert out.exit_code == 1 and out.output.startswith("Error: ")
    assert "Traceback" not in out.output


def test_the_lazy_command_table_matches_the_commands():
    """`ipam --help` lists commands from COMMANDS without loading them: it must say what they
    say, and load each from the module that defines it."""
    import click

    from web.cli.group import COMMANDS, ipam

    ipam.load_all()
    assert set(COMMANDS) == set(ipam.commands)
    for name, (module, line) in COMMANDS.items():
        command = ipam.commands[name]
        assert command.callback is None or command.callback.__module__ == f"web.cli.{module}"
        real = command.short_help or click.Command(name, help=command.help).get_short_help_str(
            10**6
        )
        assert real == line, name


def test_help_starts_without_the_web_stack_or_the_models():
    import subprocess
    import sys

    code = (
        "import sys; from web.cli import main; sys.argv = ['ipam', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('flask_sqlalchemy', 'ipam.models', 'scapy', 'argon2',"
        " 'flask_login') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert "whois" in out.stdout


WHOIS_PROGRAM = (
    "import sys; from web.cli import main\n"
    "try:\n    main()\nexcept SystemExit as exit:\n    code = exit.code\n"
    "print('loaded:', sorted(m for m in ('flask', 'sqlalchemy', 'ipam.models', 'netaddr')"
    " if m in sys.modules), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _whois_program(db_url, *args):
    import os
    import subprocess
    import sys

    env = {**os.environ, "IPAM_DATABASE_URL": db_url, "IPAM_TIMEZONE": "Asia/Shanghai"}
    return subprocess.run(
        [sys.executable, "-c", WHOIS_PROGRAM, "whois", *args],
        capture_output=True, text=True, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    "question",
    [
        ("198.18.7.9", "--at", "2026-01-01T00:00:00+08:00"),  # subleased then
        ("198.18.7.9", "--at", "2026-01-01T00:00:00+08:00", "--json"),
        ("198.18.7.9", "--at", "2026-07-01T00:00:00+08:00", "--json"),
        ("198.19.10.3", "--at", "2026-11-01T00:00:00+08:00"),  # quarantined or free
        ("198.18.200.1", "--at", "2026-07-01T00:00:00+08:00"),  # free in a pool
        ("203.0.113.9",),  # in no pool
        ("2001:db8::1", "--json"),
    ],
)
def test_whois_as_a_program_answers_as_the_app_without_flask_or_sqlalchemy(run, db_url, question):
    """`ipam whois` run as a program reads through the driver (web/cli/direct.py): the same
    answer, byte for byte, as through the app's session, and neither Flask, SQLAlchemy nor
    the models loaded (it starts at once)."""
    run("demo")
    through_app = run("whois", *question).output
    out = _whois_program(db_url, *question)
    assert out.returncode == 0, out.stderr
    if "--at" in question:
        assert out.stdout == through_app
    else:  # "now" differs by the moments between the two questions
        strip = lambda text: [line for line in text.splitlines() if '"at"' not in line  # noqa: E731
                              and not line.startswith("at:")]  # fmt: skip
        assert strip(out.stdout) == strip(through_app)
    assert "loaded: ['netaddr']" in out.stderr


def test_whois_as_a_program_refuses_like_the_app(run, db_url):
    run("demo")
    bad = _whois_program(db_url, "198.18.7.x")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("Error: address: '198.18.7.x' is not a valid IPv4")
    no_zone = _whois_program(db_url, "198.18.7.9", "--at", "2026-01-01T00:00:00")
    assert no_zone.returncode == 1 and no_zone.stderr.startswith("Error: at: ")


def test_whois_reveal_as_a_program_is_audited_through_the_app(run, db_url, session):
    run("demo")
    out = _whois_program(db_url, "198.18.7.9", "--reveal", "--reason", "police request 42")
    assert out.returncode == 0, out.stderr
    assert "310115199207084568" in out.stdout  # unmasked
    reasons = (
        session.execute(text("SELECT data FROM audit_log WHERE action = 'attribution.reveal'"))
        .scalars()
        .all()
    )
    assert any("police request 42" in str(r) for r in reasons)


def test_whois_finds_the_embedded_database_where_flask_puts_it(monkeypatch, tmp_path):
    """direct.instance_path() computes Flask's default instance folder without Flask: the
    same folder (a wheel install is checked by .ci/run, which asks whois of the demo)."""
    from flask import Flask

    from web import create_app
    from web.cli import direct

    monkeypatch.delenv("IPAM_INSTANCE_PATH")
    assert direct.instance_path() == Flask("web").instance_path
    monkeypatch.setenv("IPAM_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("IPAM_DATABASE_URL", raising=False)
    app = create_app({"IPAM_CLI": True})
    assert direct.database_url() == app.config["SQLALCHEMY_DATABASE_URI"]


def test_whois_as_a_program_names_a_database_it_cannot_reach(tmp_path):
    out = _whois_program("postgresql://nobody@127.0.0.1:1/none", "198.18.7.9")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("Error: IPAM_DATABASE_URL: cannot reach the database: ")
    out = _whois_program(f"sqlite:///{tmp_path / 'none.sqlite3'}", "198.18.7.9")
    assert "no tables yet: run `ipam init`" in out.stderr
    assert not (tmp_path / "none.sqlite3").exists()  # asking created nothing


def test_a_database_nobody_initialised_gets_a_sentence_not_a_traceback(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "IPAM_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
           "IPAM_INSTANCE_PATH": str(tmp_path)}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", "from web.cli import main; main()", "whois", "198.18.7.9"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "no tables yet: run `ipam init`" in out.stderr
