"""free tally: a pool's free blocks counted per length by triggers, so utilization needs no scan

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 03:05:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    """CREATE TRIGGER free_block_counted AFTER INSERT ON free_block BEGIN
         INSERT INTO free_tally (pool_id, prefixlen, family, n)
         VALUES (NEW.pool_id, NEW.prefixlen, NEW.family, 1)
         ON CONFLICT (pool_id, prefixlen) DO UPDATE SET n = n + 1;
       END""",
    """CREATE TRIGGER free_block_uncounted AFTER DELETE ON free_block BEGIN
         UPDATE free_tally SET n = n - 1
         WHERE pool_id = OLD.pool_id AND prefixlen = OLD.prefixlen;
       END""",
]

PG_FUNCTION = """
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

PG_TRIGGER = """CREATE TRIGGER free_block_tally AFTER INSERT OR DELETE ON free_block
    FOR EACH ROW EXECUTE FUNCTION free_tally_keep()"""


def upgrade():
    op.create_table('free_tally',
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('prefixlen', sa.SmallInteger(), nullable=False),
    sa.Column('family', sa.SmallInteger(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('pool_id', 'prefixlen', name=op.f('pk_free_tally'))
    )
    op.execute(
        "INSERT INTO free_tally (pool_id, prefixlen, family, n) "
        "SELECT pool_id, prefixlen, min(family), count(*) FROM free_block "
        "GROUP BY pool_id, prefixlen"
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        for sql in SQLITE_TRIGGERS:
            op.execute(sql)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER free_block_tally ON free_block")
        op.execute("DROP FUNCTION free_tally_keep()")
    else:
        op.execute("DROP TRIGGER free_block_counted")
        op.execute("DROP TRIGGER free_block_uncounted")
    op.drop_table('free_tally')
