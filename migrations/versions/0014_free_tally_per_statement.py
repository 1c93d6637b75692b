"""free tally per statement: on PostgreSQL the free blocks are counted once per statement
(transition tables), not once per row

Why: a rebuild of a big pool's free space (a million blocks in one transaction) updated the
same few tally rows a million times; each update of a row already updated in the same
transaction walks its earlier versions, so the rebuild of a /8 took 353 s and left the
tally's rows bloated for the allocations after it. A COPY or a multi-row INSERT now counts
its rows in one grouped upsert. SQLite keeps its row triggers (it has no other kind).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 15:30:00

"""

from alembic import op


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

PG_IN = """
CREATE FUNCTION free_block_tally_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO free_tally AS t (pool_id, prefixlen, family, n)
  SELECT pool_id, prefixlen, min(family), count(*) FROM new_rows GROUP BY pool_id, prefixlen
  ON CONFLICT (pool_id, prefixlen) DO UPDATE SET n = t.n + excluded.n;
  RETURN NULL;
END $$"""

PG_OUT = """
CREATE FUNCTION free_block_tally_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE free_tally t SET n = t.n - gone.n
  FROM (SELECT pool_id, prefixlen, count(*) AS n FROM old_rows
        GROUP BY pool_id, prefixlen) gone
  WHERE t.pool_id = gone.pool_id AND t.prefixlen = gone.prefixlen;
  RETURN NULL;
END $$"""

PG_TRIGGERS = [
    PG_IN,
    "CREATE TRIGGER free_block_tally_in AFTER INSERT ON free_block "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION free_block_tally_in()",
    PG_OUT,
    "CREATE TRIGGER free_block_tally_out AFTER DELETE ON free_block "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION free_block_tally_out()",
]

# 0009's row trigger, for the downgrade.
PG_ROW_FUNCTION = """
CREATE FUNCTION free_tally_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO free_tally (pool_id, prefixlen, family, n)
    VALUES (NEW.pool_id, NEW.prefixlen, NEW.family, 1)
    ON CONFLICT (pool_id, prefixlen) DO UPDATE SET n = free_tally.n + 1;
    RETURN NEW;
  ELSE
    UPDATE free_tally SET n = n - 1 WHERE pool_id = OLD.pool_id AND prefixlen = OLD.prefixlen;
    RETURN OLD;
  END IF;
END $$"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER free_block_tally ON free_block")
    op.execute("DROP FUNCTION free_tally_keep()")
    for sql in PG_TRIGGERS:
        op.execute(sql)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for what in ("in", "out"):
        op.execute(f"DROP TRIGGER free_block_tally_{what} ON free_block")
        op.execute(f"DROP FUNCTION free_block_tally_{what}()")
    op.execute(PG_ROW_FUNCTION)
    op.execute(
        "CREATE TRIGGER free_block_tally AFTER INSERT OR DELETE ON free_block "
        "FOR EACH ROW EXECUTE FUNCTION free_tally_keep()"
    )
