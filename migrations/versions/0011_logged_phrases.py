"""logged phrases: texts the system writes (a case's history, an incident's log, a finding's
summary, a probe run's failure) keep their words and values, so each reader sees them in
their own language; an abuse case's owner

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 07:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    # Adding a nullable column needs no table rebuild, on SQLite as on PostgreSQL.
    op.add_column('abuse_case_event', sa.Column('phrase', sa.JSON(), nullable=True))
    op.add_column('incident_action', sa.Column('phrase', sa.JSON(), nullable=True))
    op.add_column('finding', sa.Column('phrase', sa.JSON(), nullable=True))
    op.add_column('probe_run', sa.Column('phrase', sa.JSON(), nullable=True))
    op.add_column('rejected_report', sa.Column('phrase', sa.JSON(), nullable=True))
    # the staff user working an abuse case ("my cases")
    op.add_column('abuse_case', sa.Column('owner', sa.String(length=200), nullable=True))


def downgrade():
    with op.batch_alter_table('rejected_report') as batch_op:
        batch_op.drop_column('phrase')
    with op.batch_alter_table('abuse_case') as batch_op:
        batch_op.drop_column('owner')
    with op.batch_alter_table('probe_run') as batch_op:
        batch_op.drop_column('phrase')
    with op.batch_alter_table('finding') as batch_op:
        batch_op.drop_column('phrase')
    with op.batch_alter_table('incident_action') as batch_op:
        batch_op.drop_column('phrase')
    with op.batch_alter_table('abuse_case_event') as batch_op:
        batch_op.drop_column('phrase')
