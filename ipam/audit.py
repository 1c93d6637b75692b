"""The audit log: every change appended with actor, time and data, hash-chained.

Each row's hash covers its sequence number, content and the previous row's
hash; the single audit_head row holds the chain's length and last hash. An
edited, deleted or inserted row breaks the chain, a removed tail disagrees
with the head: `verify` reports the first place it breaks.

Someone who can write the database can also cut the tail and move the head
back, or empty both tables. Checkpoints catch that: the head's length and
hash, signed with a key the database does not hold, appended to a file
outside it (and to the application log); `verify` compares the chain with
the latest checkpoint, so a chain shorter than it or different at its entry
is reported.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session, scoped_session

from .db import RawJSON, insert_stored, stored_when, utcnow
from .errors import ValidationError
from .models import AuditHead, AuditLog
from .plainjson import jsonable  # noqa: F401  (re-exported: audit.jsonable)

GENESIS = "0" * 64
log = logging.getLogger(__name__)


def canonical(data) -> RawJSON:
    """The one serialisation the chain hashes: sorted keys, no spaces, UTF-8 as is.

    Bulk writers may hand it over already (RawJSON): it must be exactly this text.
    """
    if isinstance(data, RawJSON):
        return data
    return RawJSON(json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")))


def canonical_object(pairs) -> RawJSON:
    """canonical() of a flat dict of plain values, written out without json.dumps of the
    whole: `pairs` are (key, value) with keys already in sorted order."""
    return RawJSON("{" + ",".join(f"{_word(k)}:{_text(v)}" for k, v in pairs) + "}")


_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f-\x9f\u2028\u2029]*')


@functools.lru_cache(maxsize=4096)
def _word(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _text(value) -> str:
    """json.dumps(value, ensure_ascii=False), quicker for the values entries repeat."""
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    if type(value) is str and _PLAIN.fullmatch(value):  # nothing to escape
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def _digest(
    prev_hash: str,
    seq: int,
    recorded_at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id,
    data,
) -> str:
    """sha256(prev hash + the entry as canonical JSON); `data` may be canonical() already.

    The body is written out in sorted-key order, field by field, so an entry's
    data is serialised once (and stored as that text) instead of twice.
    """
    return _digest_of(
        prev_hash,
        seq,
        _text(recorded_at.isoformat()),
        _text(actor),
        _text(action),
        _text(object_type),
        _text(object_id),
        canonical(data),
    )


def _body_before_seq(at_t, actor_t, action_t, type_t, object_t, data_json) -> str:
    """The entry as canonical JSON up to its seq (the last key), from fields as JSON text."""
    return (
        f'{{"action":{action_t},"actor":{actor_t},"data":{data_json},'
        f'"object_id":{object_t},"object_type":{type_t},'
        f'"recorded_at":{at_t},"seq":'
    )


def _digest_of(prev_hash, seq, at_t, actor_t, action_t, type_t, object_t, data_json) -> str:
    """The digest from the fields as JSON text already (the bulk path reuses them)."""
    body = _body_before_seq(at_t, actor_t, action_t, type_t, object_t, data_json)
    return hashlib.sha256(f"{prev_hash}{body}{int(seq)}}}".encode()).hexdigest()


_PENDING = "ipam.audit.pending"


def record(session: Session, actor: str, action: str, obj, data: dict | None = None) -> dict:
    """Record one audit entry for a change to `obj`; it is chained and written at commit.

    Why at commit: the chain's head is the one row every change must lock.
    Appending all of a transaction's entries in its last step keeps that lock
    for a moment only, and always after the pool locks (no lock-order cycle).
    Entries of a rolled-back transaction or savepoint are dropped with it.
    """
    if not actor or not str(actor).strip():
        raise ValidationError("is required: say who makes the change", "actor")
    if isinstance(session, scoped_session):  # Flask-SQLAlchemy's proxy: its real session
        session = session()
    session.flush()  # obj needs its id
    entry = {
        "recorded_at": utcnow(),
        "actor": str(actor),
        "action": action,
        "object_type": obj.__tablename__ if hasattr(obj, "__tablename__") else str(obj),
        "object_id": getattr(obj, "id", None),
        "data": jsonable(data or {}),
    }
    session.info.setdefault(_PENDING, []).append((session.get_nested_transaction(), entry))
    return entry


def record_many(session: Session, actor: str, action: str, object_type: str, items) -> int:
    """Record one entry per (object_id, data) of a bulk write, chained at commit like record().

    Why: bulk intake writes rows without ORM objects; this keeps an entry per
    row without a flush per entry. `data` must hold plain JSON values already
    (strings, numbers, None, lists, dicts).
    """
    if not actor or not str(actor).strip():
        raise ValidationError("is required: say who makes the change", "actor")
    if isinstance(session, scoped_session):
        session = session()
    at, txn = utcnow(), session.get_nested_transaction()
    pending = session.info.setdefault(_PENDING, [])
    before = len(pending)
    pending.extend(
        (
            txn,
            {
                "recorded_at": at,
                "actor": str(actor),
                "action": action,
                "object_type": object_type,
                "object_id": object_id,
                "data": data,
            },
        )
        for object_id, data in items
    )
    return len(pending) - before


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    """Chain and write the transaction's entries: one head update for all of them."""
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres and len(pending) == 1:  # one change, one entry: the usual write
        _pg_append_one(session, pending[0][1])
        return
    # The UPDATE locks the head row until commit (PostgreSQL), so chains never fork.
    seq, prev = session.execute(
        text("UPDATE audit_head SET seq = seq + :n WHERE id = 1 RETURNING seq, last_hash"),
        {"n": len(pending)},
    ).one()
    seq -= len(pending)
    small = postgres and len(pending) <= PG_ROWS_PER_STATEMENT
    if small:
        rows = []
        for _txn, e in pending:
            seq += 1
            data = canonical(e["data"])  # hashed and stored as the same text
            digest = _digest(
                prev, seq, e["recorded_at"], e["actor"], e["action"], e["object_type"],
                e["object_id"], data,
            )  # fmt: skip
            rows.append({**e, "data": data, "seq": seq, "prev_hash": prev, "hash": digest})
            prev = digest
        # One round trip while the head is locked: the rows go in a CTE of the head update.
        session.execute(_pg_append_sql(len(rows)), _pg_append_params(rows, prev))
        return
    # SQLite, and big PostgreSQL transactions: the stored rows built here, one bulk insert.
    when, at_cache, values = stored_when(session), {}, []
    for _txn, e in pending:
        seq += 1
        at = e["recorded_at"]
        if at not in at_cache:  # a bulk write's entries share their instant
            at_cache[at] = (_text(at.isoformat()), when(at))
        at_t, stored_at = at_cache[at]
        data = canonical(e["data"])
        digest = _digest_of(
            prev, seq, at_t, _text(e["actor"]), _text(e["action"]), _text(e["object_type"]),
            _text(e["object_id"]), data,
        )  # fmt: skip
        values.append(
            (seq, stored_at, e["actor"], e["action"], e["object_type"], e["object_id"], data,
             prev, digest)
        )  # fmt: skip
        prev = digest
    insert_stored(session, AuditLog.__table__, list(_COLUMNS), values)
    session.execute(text("UPDATE audit_head SET last_hash = :h WHERE id = 1"), {"h": prev})


PG_ROWS_PER_STATEMENT = 1000

_COLUMNS = (
    "seq",
    "recorded_at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "data",
    "prev_hash",
    "hash",
)


# One entry chained and written in one statement (the head's row locked by it until
# commit): PostgreSQL hashes the previous hash, the entry's canonical JSON up to its seq
# (made here, _body_before_seq) and the seq it takes, exactly as _digest_of does.
_PG_APPEND_ONE = text(
    "WITH head AS (SELECT seq + 1 AS seq, last_hash AS prev FROM audit_head WHERE id = 1 "
    "FOR UPDATE), "
    "entry AS (SELECT seq, prev, encode(sha256(convert_to("
    "prev || CAST(:body AS text) || seq::text || '}', 'UTF8')), 'hex') AS hash FROM head), "
    "moved AS (UPDATE audit_head SET seq = entry.seq, last_hash = entry.hash FROM entry "
    "WHERE audit_head.id = 1) "
    "INSERT INTO audit_log (seq, recorded_at, actor, action, object_type, object_id, data, "
    "prev_hash, hash) SELECT seq, CAST(:recorded_at AS timestamp), CAST(:actor AS text), "
    "CAST(:action AS text), CAST(:object_type AS text), CAST(:object_id AS integer), "
    "CAST(:data AS json), prev, hash FROM entry"
)


def _pg_append_one(session: Session, e: dict) -> None:
    """Why: a round trip less while the head is locked, on every single change."""
    at, data = e["recorded_at"], canonical(e["data"])  # hashed and stored as the same text
    body = _body_before_seq(
        _text(at.isoformat()), _text(e["actor"]), _text(e["action"]), _text(e["object_type"]),
        _text(e["object_id"]), data,
    )  # fmt: skip
    session.execute(
        _PG_APPEND_ONE,
        {
            "body": body,
            "recorded_at": at.astimezone(UTC).replace(tzinfo=None),  # as UTCDateTime stores
            "actor": e["actor"],
            "action": e["action"],
            "object_type": e["object_type"],
            "object_id": e["object_id"],
            "data": str(data),
        },
    )


@functools.lru_cache(maxsize=16)
def _pg_append_sql(n: int):
    """INSERT n audit rows and move the head, as one PostgreSQL statement (plain SQL)."""
    values = ", ".join(
        "("
        + ", ".join(f"CAST(:{c}_{i} AS json)" if c == "data" else f":{c}_{i}" for c in _COLUMNS)
        + ")"
        for i in range(n)
    )
    return text(
        f"WITH audit_rows AS (INSERT INTO audit_log ({', '.join(_COLUMNS)}) VALUES {values}) "
        "UPDATE audit_head SET last_hash = :last_hash WHERE id = 1"
    )


def _pg_append_params(rows: list[dict], last_hash: str) -> dict:
    params = {"last_hash": last_hash}
    for i, row in enumerate(rows):
        for c in _COLUMNS:
            value = row[c]
            if c == "recorded_at":  # stored as naive UTC, like UTCDateTime does
                value = value.astimezone(UTC).replace(tzinfo=None)
            elif c == "data" and not isinstance(value, RawJSON):
                value = json.dumps(value, ensure_ascii=False)
            params[f"{c}_{i}"] = value
    return params


def _inside(txn, savepoint) -> bool:
    while txn is not None:
        if txn is savepoint:
            return True
        txn = txn.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    """Forget entries of what was rolled back: everything, or one savepoint's part."""
    pending = session.info.get(_PENDING)
    if not pending:
        return
    if not previous_transaction.nested:
        session.info.pop(_PENDING, None)
        return
    session.info[_PENDING] = [
        (txn, e) for txn, e in pending if not _inside(txn, previous_transaction)
    ]


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problem: str | None = None
    seq: int | None = None


def verify(
    session: Session, batch: int = 5000, checkpoints: Checkpoints | None = None
) -> VerifyResult:
    """Walk the chain in order; return where it first breaks, if it does.

    With `checkpoints`, the chain must also reach the latest checkpoint and
    agree with it there (a cut tail, an emptied log, a rewritten chain).
    """
    prev = GENESIS
    expected_seq = 1
    checked = 0
    last_seq = 0
    while True:
        rows = session.execute(
            select(
                AuditLog.seq,
                AuditLog.recorded_at,
                AuditLog.actor,
                AuditLog.action,
                AuditLog.object_type,
                AuditLog.object_id,
                AuditLog.data,
                AuditLog.prev_hash,
                AuditLog.hash,
            )
            .where(AuditLog.seq > last_seq)
            .order_by(AuditLog.seq)
            .limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                return VerifyResult(
                    False, checked, f"entry {expected_seq} is missing", expected_seq
                )
            if row.prev_hash != prev:
                return VerifyResult(
                    False, checked, f"entry {row.seq} does not follow its predecessor", row.seq
                )
            digest = _digest(
                prev,
                row.seq,
                row.recorded_at,
                row.actor,
                row.action,
                row.object_type,
                row.object_id,
                row.data,
            )
            if digest != row.hash:
                return VerifyResult(False, checked, f"entry {row.seq} was altered", row.seq)
            prev = row.hash
            expected_seq += 1
            checked += 1
            last_seq = row.seq
    head = session.execute(
        select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1)
    ).one_or_none()
    head_seq, head_hash = (head.seq, head.last_hash) if head else (0, GENESIS)
    if head_seq != checked or head_hash != prev:
        return VerifyResult(
            False,
            checked,
            f"the log ends at entry {checked} but the head records {head_seq}: "
            "entries were removed",
            checked + 1,
        )
    if checkpoints is not None:
        problem = checkpoints.disagreement(session, checked)
        if problem:
            return VerifyResult(False, checked, problem[1], problem[0])
    return VerifyResult(True, checked)


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str


class Checkpoints:
    """The signed checkpoint file: one JSON line per checkpoint, appended, never rewritten.

    Why a file and a key: whoever can rewrite the database can rewrite a
    head stored there too; a line signed with IPAM_AUDIT_KEY (kept out of
    the database) and written elsewhere cannot be forged from inside it.
    """

    def __init__(self, path, key: str | bytes):
        self.path = Path(path)
        self.key = key.encode() if isinstance(key, str) else key

    def _sign(self, seq: int, digest: str, at: str) -> str:
        body = f"{seq}:{digest}:{at}".encode()
        return hmac.new(self.key, body, hashlib.sha256).hexdigest()

    def write(self, session: Session) -> Checkpoint:
        """Append the chain's current head as a signed line (fsynced) and log it."""
        head = session.execute(
            select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1)
        ).one_or_none()
        seq, digest = (head.seq, head.last_hash) if head else (0, GENESIS)
        at = utcnow().isoformat()
        line = {"seq": seq, "hash": digest, "at": at, "sig": self._sign(seq, digest, at)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(line) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        log.info("audit checkpoint: %s entries, head %s, at %s", seq, digest, at)
        return Checkpoint(seq, digest, at)

    def latest(self) -> Checkpoint | None:
        """The checkpoint with the longest chain; ValidationError if a line is not ours."""
        if not self.path.exists():
            return None
        best = None
        for number, raw in enumerate(self.path.read_text().splitlines(), 1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
                point = Checkpoint(int(item["seq"]), str(item["hash"]), str(item["at"]))
                good = hmac.compare_digest(
                    str(item["sig"]), self._sign(point.seq, point.hash, point.at)
                )
            except (ValueError, KeyError, TypeError):
                good = False
            if not good:
                raise ValidationError(
                    "line {number} of {path} is not a checkpoint signed with this deployment's "
                    "key (IPAM_AUDIT_KEY): the file was altered or the key changed",
                    "checkpoint",
                    number=number,
                    path=self.path,
                )
            if best is None or point.seq >= best.seq:
                best = point
        return best

    def disagreement(self, session: Session, checked: int) -> tuple[int, str] | None:
        """(entry, problem) where a verified chain of `checked` entries disagrees with the file."""
        try:
            point = self.latest()
        except ValidationError as exc:
            return 0, exc.message
        if point is None or point.seq == 0:
            return None
        if checked < point.seq:
            return (
                checked + 1,
                f"the log ends at entry {checked} but the checkpoint of {point.at} "
                f"recorded {point.seq} entries: entries were removed",
            )
        digest = session.execute(
            select(AuditLog.hash).where(AuditLog.seq == point.seq)
        ).scalar_one_or_none()
        if digest != point.hash:
            return (
                point.seq,
                f"entry {point.seq} differs from the checkpoint of {point.at}: "
                "the log was rewritten",
            )
        return None


def checkpoints_from(config) -> Checkpoints:
    """The deployment's checkpoint file and key, from its settings.

    IPAM_AUDIT_CHECKPOINTS names the file; the key is IPAM_AUDIT_KEY, else one
    made once and kept in IPAM_AUDIT_KEY_FILE (mode 0600), for one-host set-ups.
    """
    key = config.get("IPAM_AUDIT_KEY")
    if not key:
        path = Path(config["IPAM_AUDIT_KEY_FILE"])
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(os.urandom(32).hex())
        key = path.read_text().strip()
    return Checkpoints(config["IPAM_AUDIT_CHECKPOINTS"], key)


def head(session: Session) -> tuple[int, str]:
    """The chain's head now: (entries, last hash). Issued reports and certificates carry it."""
    row = session.execute(
        select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1)
    ).one_or_none()
    return (row.seq, row.last_hash) if row else (0, GENESIS)


def anchor_problem(session: Session, seq: int, digest: str) -> str | None:
    """Why the log does not hold the head (seq, digest) a report or certificate carried out,
    or None when it does (a later rewrite of log and head together is caught here)."""
    if seq == 0:
        return None if digest == GENESIS else "the anchor's hash is not the empty chain's"
    found = session.execute(select(AuditLog.hash).where(AuditLog.seq == seq)).scalar_one_or_none()
    if found is None:
        return f"the log has no entry {seq}: entries were removed after the anchor was issued"
    if found != digest:
        return f"entry {seq} differs from the anchor: the log was rewritten after it was issued"
    return None
