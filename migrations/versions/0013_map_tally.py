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


PG_FUNCTION = """
CREATE FUNCTION map_tally_keep() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  kind_ text := TG_ARGV[0];
  old_live boolean := false;
  new_live boolean := false;
  row_ record;
  n bigint;
  cell16 bigint;
BEGIN
  IF TG_OP <> 'INSERT' THEN
    IF TG_TABLE_NAME = 'quarantine' THEN old_live := OLD.released_at IS NULL;
    ELSE old_live := OLD.valid_to IS NULL; END IF;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    IF TG_TABLE_NAME = 'quarantine' THEN new_live := NEW.released_at IS NULL;
    ELSE new_live := NEW.valid_to IS NULL; END IF;
  END IF;
  IF old_live = new_live THEN RETURN NULL; END IF;
  IF new_live THEN row_ := NEW; ELSE row_ := OLD; END IF;
  IF row_.family <> 4 THEN RETURN NULL; END IF;
  n := (1::bigint << (32 - row_.prefixlen)) * (CASE WHEN new_live THEN 1 ELSE -1 END);
  cell16 := get_byte(row_.first, 12) * 256 + get_byte(row_.first, 13);
  IF row_.prefixlen >= 16 THEN
    INSERT INTO map_tally AS t (family, level, cell, allocated, subleased, quarantined)
    VALUES (4, 16, cell16, CASE WHEN kind_ = 'allocated' THEN n ELSE 0 END,
            CASE WHEN kind_ = 'subleased' THEN n ELSE 0 END,
            CASE WHEN kind_ = 'quarantined' THEN n ELSE 0 END)
    ON CONFLICT (family, level, cell) DO UPDATE SET allocated = t.allocated + excluded.allocated,
      subleased = t.subleased + excluded.subleased, quarantined = t.quarantined + excluded.quarantined;
  END IF;
  IF row_.prefixlen >= 20 THEN
    INSERT INTO map_tally AS t (family, level, cell, allocated, subleased, quarantined)
    VALUES (4, 20, cell16 * 16 + (get_byte(row_.first, 14) >> 4),
            CASE WHEN kind_ = 'allocated' THEN n ELSE 0 END,
            CASE WHEN kind_ = 'subleased' THEN n ELSE 0 END,
            CASE WHEN kind_ = 'quarantined' THEN n ELSE 0 END)
    ON CONFLICT (family, level, cell) DO UPDATE SET allocated = t.allocated + excluded.allocated,
      subleased = t.subleased + excluded.subleased, quarantined = t.quarantined + excluded.quarantined;
  END IF;
  IF row_.prefixlen >= 24 THEN
    INSERT INTO map_tally AS t (family, level, cell, allocated, subleased, quarantined)
    VALUES (4, 24, cell16 * 256 + get_byte(row_.first, 14),
            CASE WHEN kind_ = 'allocated' THEN n ELSE 0 END,
            CASE WHEN kind_ = 'subleased' THEN n ELSE 0 END,
            CASE WHEN kind_ = 'quarantined' THEN n ELSE 0 END)
    ON CONFLICT (family, level, cell) DO UPDATE SET allocated = t.allocated + excluded.allocated,
      subleased = t.subleased + excluded.subleased, quarantined = t.quarantined + excluded.quarantined;
  ELSIF new_live THEN
    INSERT INTO map_big (kind, src_id, family, first, last)
    VALUES (kind_, row_.id, 4, row_.first, row_.last);
  ELSE
    DELETE FROM map_big AS b WHERE b.kind = kind_ AND b.src_id = row_.id;
  END IF;
  RETURN NULL;
END $$"""


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
        op.execute(PG_FUNCTION)
        for table, end, kind in SOURCES:
            op.execute(
                f"CREATE TRIGGER {table}_map AFTER INSERT OR DELETE OR UPDATE OF {end} "
                f"ON {table} FOR EACH ROW EXECUTE FUNCTION map_tally_keep('{kind}')"
            )
    else:
        for sql in sqlite_triggers():
            op.execute(sql)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for table, _end, _kind in SOURCES:
            op.execute(f"DROP TRIGGER {table}_map ON {table}")
        op.execute("DROP FUNCTION map_tally_keep()")
    else:
        for table, _end, _kind in SOURCES:
            for what in ("in", "end", "reopen", "out"):
                op.execute(f"DROP TRIGGER {table}_map_{what}")
    op.drop_table('map_big')
    op.drop_table('map_tally')
