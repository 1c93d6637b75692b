"""session keys: every login session names its user's current key, so a new key ends them all

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_key', sa.String(length=32), nullable=True))
    # A random key for every existing user (the sessions they have now end once).
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE user_account SET session_key = md5(random()::text || id::text)")
    else:
        op.execute("UPDATE user_account SET session_key = lower(hex(randomblob(16)))")
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.alter_column('session_key', existing_type=sa.String(length=32), nullable=False)


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('session_key')
