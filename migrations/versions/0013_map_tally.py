"""map tally: current IPv4 holdings counted per /16, /20 and /24 by triggers, so the address
map of a large prefix reads a few thousand counts instead of every holding inside it

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 11:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# (table, the column that ends a row's current life, the map's word for it)
SOURCES = (
    ("allocation", "valid_to", "allocated"),
    ("sublease", "valid_to", "subleased"),
    ("quarantine", "released_at", "quarantined"),
)
BYTES = "X'" + "".join(f"{b:02X}" for b in range(256)) + "'"  # instr() finds a byte's value


def _byte(row: str, n: int) -> str:
    """SQLite: the value of byte n (1-based) of a 16-byte address."""
    return f"(instr({BYTES}, substr({row}.first, {n}, 1)) - 1)"


def _sqlite_change(row: str, kind: str, sign: str) -> str:
    cell16 = f"({_byte(row, 13)} * 256 + {_byte(row, 14)})"
    cell20 = f"({cell16} * 16 + ({_byte(row, 15)} >> 4))"
    cell24 = f"({cell16} * 256 + {_byte(row, 15)})"
    size = f"({sign}(1 << (32 - {row}.prefixlen)))"
    out = []
    for level, cell, least in ((16, cell16, 16), (20, cell20, 20), (24, cell24, 24)):
        out.append(
            f"INSERT INTO map_tally (family, level, cell, {kind}) "
            f"SELECT 4, {level}, {cell}, {size} WHERE {row}.prefixlen >= {least} "
            f"ON CONFLICT (family, level, cell) DO UPDATE SET {kind} = {kind} + excluded.{kind};"
        )
    if sign == "+":
        out.append(
            f"INSERT INTO map_big (kind, src_id, family, first, last) "
            f"SELECT '{kind}', {row}.id, 4, {row}.first, {row}.last WHERE {row}.prefixlen < 24;"
        )
    else:
        out.append(f"DELETE FROM map_big WHERE kind = '{kind}' AND src_id = {row}.id;")
    return "\n".join(out)


def sqlite_triggers() -> list[str]:
    out = []
    for table, end, kind in SOURCES:
        out += [
            f"""CREATE TRIGGER {table}_map_in AFTER INSERT ON {table}
                WHEN NEW.{end} IS NULL AND NEW.family = 4 BEGIN
                {_sqlite_change("NEW", kind, "+")} END""",
            f"""CREATE TRIGGER {table}_map_end AFTER UPDATE OF {end} ON {table}
                WHEN OLD.{end} IS NULL AND NEW.{end} IS NOT NULL AND OLD.family = 4 BEGIN
                {_sqlite_change("OLD", kind, "-")} END""",
            f"""CREATE TRIGGER {table}_map_reopen AFTER UPDATE OF {end} ON {table}
                WHEN OLD.{end} IS NOT NULL AND NEW.{end} IS NULL AND NEW.family = 4 BEGIN
                {_sqlite_change("NEW", kind, "+")} END""",
            f"""CREATE TRIGGER {table}_map_out AFTER DELETE ON {table}
                WHEN OLD.{end} IS NULL AND OLD.family = 4 BEGIN
                {_sqlite_change("OLD", kind, "-")} END""",
        ]
    return out


# PostgreSQL: statement-level triggers with transition tables, so a bulk import (COPY) or a
# customer exit counts all its rows in one grouped upsert instead of a function call per row;
# one function per table and event, in static SQL (plans kept), returning at once when the
# statement changed no current IPv4 row (an IPv6 allocation, an edit of a purpose).
_SOURCES_SQL = {
    "in": "SELECT id, first, last, prefixlen, 1 AS sign FROM new_rows "
          "WHERE family = 4 AND {end} IS NULL",
    "out": "SELECT id, first, last, prefixlen, -1 AS sign FROM old_rows "
           "WHERE family = 4 AND {end} IS NULL",
    "end": "SELECT o.id, o.first, o.last, o.prefixlen, "
           "CASE WHEN n.{end} IS NULL THEN 1 ELSE -1 END AS sign "
           "FROM old_rows o JOIN new_rows n ON n.id = o.id "
           "WHERE o.family = 4 AND (o.{end} IS NULL) <> (n.{end} IS NULL)",
}  # fmt: skip


def _pg_function(table: str, end: str, kind: str, event: str) -> str:
    source = _SOURCES_SQL[event].format(end=end)
    column = {"allocated": 0, "subleased": 1, "quarantined": 2}[kind]
    sums = ", ".join("sum(r.n)" if k == column else "0" for k in range(3))
    return f"""
CREATE FUNCTION {table}_map_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS ({source}) THEN RETURN NULL; END IF;
  INSERT INTO map_tally AS t (family, level, cell, allocated, subleased, quarantined)
  SELECT 4, lv.level,
         CASE lv.level WHEN 16 THEN r.c16 WHEN 20 THEN r.c16 * 16 + (r.b14 >> 4)
              ELSE r.c16 * 256 + r.b14 END,
         {sums}
  FROM (SELECT get_byte(first, 12)::bigint * 256 + get_byte(first, 13) AS c16,
               get_byte(first, 14)::bigint AS b14, prefixlen,
               sign * (1::bigint << (32 - prefixlen)) AS n
        FROM ({source}) s) r
  JOIN (VALUES (16), (20), (24)) AS lv(level) ON r.prefixlen >= lv.level
  GROUP BY 1, 2, 3
  ON CONFLICT (family, level, cell) DO UPDATE SET allocated = t.allocated + excluded.allocated,
    subleased = t.subleased + excluded.subleased, quarantined = t.quarantined + excluded.quarantined;
  DELETE FROM map_big b USING ({source}) s
  WHERE s.sign = -1 AND s.prefixlen < 24 AND b.kind = '{kind}' AND b.src_id = s.id;
  INSERT INTO map_big (kind, src_id, family, first, last)
  SELECT '{kind}', id, 4, first, last FROM ({source}) s WHERE sign = 1 AND prefixlen < 24;
  RETURN NULL;
END $$"""


def _pg_triggers(table: str, end: str, kind: str) -> list[str]:
    refs = {
        "in": ("INSERT", "NEW TABLE AS new_rows"),
        "out": ("DELETE", "OLD TABLE AS old_rows"),
        "end": ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    }
    out = []
    for event, (op_, ref) in refs.items():
        out.append(_pg_function(table, end, kind, event))
        out.append(
            f"CREATE TRIGGER {table}_map_{event} AFTER {op_} ON {table} REFERENCING {ref} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_map_{event}()"
        )
    return out


def _backfill() -> None:
    """The counts of today's holdings (a ledger upgraded in place)."""
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    for table, end, kind in SOURCES:
        rows = bind.execute(
            sa.text(
                f"SELECT id, first, last, prefixlen FROM {table} "
                f"WHERE family = 4 AND {end} IS NULL"
            )
        )
        tally: dict[tuple[int, int], int] = {}
        big = []
        for row_id, first, last, plen in rows:
            value = int.from_bytes(bytes(first), "big")
            if plen >= 16:
                key = (16, value >> 16)
                tally[key] = tally.get(key, 0) + (1 << (32 - plen))
            if plen >= 20:
                key = (20, value >> 12)
                tally[key] = tally.get(key, 0) + (1 << (32 - plen))
            if plen >= 24:
                key = (24, value >> 8)
                tally[key] = tally.get(key, 0) + (1 << (32 - plen))
            else:
                big.append({"k": kind, "i": row_id, "f": bytes(first), "l": bytes(last)})
        if big:
            bind.execute(
                sa.text("INSERT INTO map_big (kind, src_id, family, first, last) "
                        "VALUES (:k, :i, 4, :f, :l)"),
                big,
            )
        if tally:
            upsert = (
                f"INSERT INTO map_tally (family, level, cell, {kind}) VALUES (4, :lv, :c, :n) "
                f"ON CONFLICT (family, level, cell) DO UPDATE SET {kind} = "
                + (f"{kind} + excluded.{kind}" if sqlite else f"map_tally.{kind} + excluded.{kind}")
            )
            bind.execute(
                sa.text(upsert),
                [{"lv": lv, "c": c, "n": n} for (lv, c), n in tally.items()],
            )


def upgrade():
    op.create_table(
        'map_tally',
        sa.Column('family', sa.SmallInteger(), nullable=False),
        sa.Column('level', sa.SmallInteger(), nullable=False),
        sa.Column('cell', sa.BigInteger(), nullable=False),
        sa.Column('allocated', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('subleased', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('quarantined', sa.BigInteger(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('family', 'level', 'cell', name=op.f('pk_map_tally')),
    )
    op.create_table(
        'map_big',
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('src_id', sa.Integer(), nullable=False),
        sa.Column('family', sa.SmallInteger(), nullable=False),
        sa.Column('first', sa.LargeBinary(length=16), nullable=False),
        sa.Column('last', sa.LargeBinary(length=16), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'src_id', name=op.f('pk_map_big')),
    )
    _backfill()
    if op.get_bind().dialect.name == 'postgresql':
        for table, end, kind in SOURCES:
            for sql in _pg_triggers(table, end, kind):
                op.execute(sql)
    else:
        for sql in sqlite_triggers():
            op.execute(sql)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for table, _end, _kind in SOURCES:
            for what in ("in", "out", "end"):
                op.execute(f"DROP TRIGGER {table}_map_{what} ON {table}")
                op.execute(f"DROP FUNCTION {table}_map_{what}()")
    else:
        for table, _end, _kind in SOURCES:
            for what in ("in", "end", "reopen", "out"):
                op.execute(f"DROP TRIGGER {table}_map_{what}")
    op.drop_table('map_big')
    op.drop_table('map_tally')
