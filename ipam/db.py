"""Declarative base, column types and the session helpers every write uses."""

from __future__ import annotations

import enum
import functools
import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from operator import itemgetter

from sqlalchemy import JSON, DateTime, Enum, MetaData, String, Table, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """Store instants as naive UTC, hand them back timezone-aware (UTC).

    SQLite has no time zones; storing naive UTC on both back-ends keeps
    comparisons in SQL correct and identical.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a time zone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class StateType(TypeDecorator):
    """A state column: stored as its plain value (VARCHAR, checked by the table's CHECK),
    handed back as its enum member; an unknown value is refused before it reaches SQL."""

    impl = String
    cache_ok = True

    def __init__(self, enum_cls: type[enum.StrEnum], length: int = 16):
        super().__init__(length)
        self.enum_cls = enum_cls

    def process_bind_param(self, value, dialect):
        return None if value is None else self.enum_cls(value).value

    def process_result_value(self, value, dialect):
        return None if value is None else self.enum_cls(value)


class RawJSON(str):
    """JSON text already serialised (the audit's canonical form): stored as it is."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Return the instant in UTC, rounded to the microsecond both back-ends keep."""
    return value.astimezone(UTC)


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection, connection_record):
    """Make SQLite behave: foreign keys, WAL, a busy timeout, and our own BEGIN."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        # Let SQLAlchemy emit BEGIN itself (see _sqlite_on_begin) so that
        # savepoints work and every transaction takes the write lock up front.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        # A short wait inside SQLite; the BEGIN of a write waits in _sqlite_on_begin instead.
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        # Larger page cache and memory-mapped reads: look-ups touch random pages of big indexes.
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA mmap_size=1073741824")
        cur.close()


_READING: ContextVar[bool] = ContextVar("ipam_reading", default=False)


SQLITE_BUSY_MS = 5  # SQLite's own wait per attempt
SQLITE_LOCK_WAIT = 30.0  # seconds a write waits for the lock in all before it fails


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(conn):
    """BEGIN IMMEDIATE takes SQLite's single write lock at the start, so two writers
    queue instead of one failing on upgrade (PostgreSQL uses row locks instead).

    Why the loop: SQLite's own busy handler sleeps up to 100 ms between tries, so a
    writer that has waited a while misses a lock that is free for less than that
    (between two chunks of a bulk import, say) and can wait for many seconds. Here a
    waiting writer tries again every few milliseconds, for SQLITE_LOCK_WAIT in all.
    Inside reading() a plain (deferred) BEGIN: a WAL reader beside the writer.
    """
    if conn.dialect.name != "sqlite":
        return
    if _READING.get():
        conn.exec_driver_sql("BEGIN")
        return
    raw = conn.connection.dbapi_connection
    deadline = time.monotonic() + SQLITE_LOCK_WAIT
    while time.monotonic() < deadline:
        try:
            raw.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        time.sleep(random.uniform(0.0005, 0.003))
    conn.exec_driver_sql("BEGIN IMMEDIATE")  # a last try, failing as SQLAlchemy reports it


def reading_token():
    """Begin this context's next transactions deferred (reads only, no write lock on SQLite);
    the token goes back to reset_reading()."""
    return _READING.set(True)


def reset_reading(token) -> None:
    _READING.reset(token)


@contextmanager
def reading(session: Session) -> Iterator[Session]:
    """Begin a transaction of reads only, that never makes writers wait.

    Why: long checks before a bulk write (an import's whole file) must not hold
    SQLite's write lock; PostgreSQL readers never block writers anyway. Nothing
    may be written in it; the caller ends it (its chunk_done) before writing.
    """
    if isinstance(session, scoped_session):  # Flask-SQLAlchemy's proxy: its real session
        session = session()
    if session.in_transaction():
        raise RuntimeError("reading() needs a session with no transaction in progress")
    token = _READING.set(True)
    try:
        yield session
    finally:
        _READING.reset(token)


@contextmanager
def transaction(session: Session) -> Iterator[Session]:
    """The one transaction boundary: commit when the block ends, roll back if it raises.

    Why one: the web (a request), the CLI (a command) and the jobs (a run) all
    enter here, and nothing in ipam/ commits on its own, so a refused change
    leaves nothing half-written wherever it came from. Work that must keep its
    progress in chunks (a long intake) is handed `chunk_done(session)` by its
    caller and calls it between chunks.
    """
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def chunk_done(session: Session) -> Callable[[], None]:
    """A boundary between chunks of one long piece of work: keep what is done so far."""
    return session.commit


def lock_rows(session: Session, table: str, ids) -> None:
    """Take a write lock on rows by touching their lock_version, in id order.

    On PostgreSQL this is a row lock held to commit; on SQLite the transaction
    already holds the database write lock. Sorted order avoids deadlocks.
    """
    for row_id in sorted(set(ids)):
        session.execute(
            text(f"UPDATE {table} SET lock_version = lock_version + 1 WHERE id = :id"),
            {"id": row_id},
        )


def lock_named(session: Session, name: str) -> None:
    """Take a transaction-long lock on a name (PostgreSQL advisory lock).

    On SQLite the transaction already holds the single write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


def reserve_ids(session: Session, table: str, n: int) -> list[int]:
    """Take n fresh primary keys of `table` for a bulk insert that needs them up front.

    Why: inserting thousands of rows with RETURNING goes row by row on SQLite;
    with the keys known, one executemany writes them all. PostgreSQL draws
    them from the table's sequence; SQLite's transaction holds the database
    write lock from BEGIN IMMEDIATE, so the keys above max(id) stay ours.
    """
    if n <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        sql = (  # one row back, not n: the keys come as one array
            "SELECT array_agg(nextval(pg_get_serial_sequence(:t, 'id'))) "
            "FROM generate_series(1, :n)"
        )
        return list(session.execute(text(sql), {"t": table, "n": n}).scalar_one())
    top = session.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()
    return list(range(top + 1, top + n + 1))


def _sqlite_when(v):
    if v is None:
        return None
    naive = v.replace(tzinfo=None) if v.tzinfo is UTC else v.astimezone(UTC).replace(tzinfo=None)
    text = naive.isoformat(" ")  # SQLAlchemy's SQLite form always carries microseconds
    return text if naive.microsecond else text + ".000000"


def _pg_when(v):
    if v is None:
        return None
    return v.replace(tzinfo=None) if v.tzinfo is UTC else v.astimezone(UTC).replace(tzinfo=None)


def _storage(column_type, sqlite: bool):
    """What the driver stores for this column type, as a function; None: the value as it is."""
    if isinstance(column_type, UTCDateTime):
        return _sqlite_when if sqlite else _pg_when
    if isinstance(column_type, Enum):
        return lambda v: v.value if isinstance(v, enum.Enum) else v
    if isinstance(column_type, StateType):
        return lambda v, cls=column_type.enum_cls: None if v is None else cls(v).value
    if isinstance(column_type, JSON):  # a str subclass is JSON text already (audit.RawJSON)
        return lambda v: (
            None if v is None else v if type(v) is not str and isinstance(v, str) else json.dumps(v)
        )
    return None


def insert_plain(session: Session, table: Table, rows: list[dict]) -> None:
    """INSERT many rows with one executemany straight to the driver (COPY on PostgreSQL).

    Why: SQLAlchemy processes every parameter of every row in Python, which
    is most of the cost of bulk intake; here only the columns that need it
    are converted, by their type (UTC instants as the schema stores them,
    enums as their values, JSON as text). Every row must give the same columns.
    """
    if not rows:
        return
    sqlite = session.get_bind().dialect.name == "sqlite"
    names = list(rows[0])
    convert = [
        (i, f) for i, n in enumerate(names) if (f := _storage(table.c[n].type, sqlite)) is not None
    ]
    if not sqlite:  # a batch's instants repeat (its `now`): convert each once
        convert = [(i, functools.cache(f) if f is _pg_when else f) for i, f in convert]
    get = itemgetter(*names)
    values = []
    for row in rows:
        vals = list(get(row)) if len(names) > 1 else [get(row)]
        for i, f in convert:
            vals[i] = f(vals[i])
        values.append(tuple(vals))
    insert_stored(session, table, names, values)


def stored_when(session: Session) -> Callable:
    """How this back-end stores an instant: for callers that build stored rows themselves."""
    return _sqlite_when if session.get_bind().dialect.name == "sqlite" else _pg_when


def insert_stored(session: Session, table: Table, names: list[str], values: list[tuple]) -> None:
    """INSERT rows given as tuples of stored values (see insert_plain), the fastest way."""
    if not values:
        return
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    if not sqlite and len(values) >= COPY_FROM:
        # COPY: one stream instead of a statement per row (psycopg's executemany); binary
        # when every column's type is a plain one, so the server parses nothing.
        cursor = conn.connection.dbapi_connection.cursor()
        types = [_COPY_TYPES.get(type(table.c[n].type).__name__) for n in names]
        binary = all(types)
        fmt = " (FORMAT BINARY)" if binary else ""
        with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN{fmt}") as copy:
            if binary:
                copy.set_types(types)
            for vals in values:
                copy.write_row(vals)
        return
    mark = "?" if sqlite else "%s"
    marks = [
        f"CAST({mark} AS json)" if isinstance(table.c[n].type, JSON) and not sqlite else mark
        for n in names
    ]
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(marks)})"
    conn.exec_driver_sql(sql, values)


COPY_FROM = 200  # rows: below this, a plain executemany is as quick
# Column types by their SQLAlchemy class, as PostgreSQL names them for a binary COPY.
_COPY_TYPES = {
    "Integer": "int4",
    "SmallInteger": "int2",
    "BigInteger": "int8",
    "LargeBinary": "bytea",
    "Text": "text",
    "String": "text",
    "UTCDateTime": "timestamp",
    "Boolean": "bool",
    "Float": "float8",
    "Enum": "text",  # stored as its value (VARCHAR): the same bytes as text
    "StateType": "text",
    "JSON": "text",  # json's binary form is its text: the canonical JSON, sent as it is
}
