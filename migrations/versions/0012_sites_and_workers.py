"""beyond one host: data centres (sites) for pools and probe schedules, probe workers and
their heartbeats, probe runs claimed by a worker, queued jobs with their input

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 10:00:00

"""
from alembic import op
import sqlalchemy as sa

from ipam.db import UTCDateTime


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

OLD_STATUS = "status IN ('running', 'done', 'failed')"
NEW_STATUS = "status IN ('queued', 'running', 'done', 'failed')"


def _status_check(rule: str) -> None:
    """job_run's status check, replaced. SQLite's batch mode rebuilds the table without the
    old check (it does not reflect checks), so only PostgreSQL drops it by name."""
    with op.batch_alter_table('job_run', recreate='always') as batch_op:
        if op.get_bind().dialect.name != 'sqlite':
            batch_op.drop_constraint('job_status', type_='check')
        batch_op.create_check_constraint('job_status', rule)


def upgrade():
    op.create_table(
        'data_centre',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_data_centre')),
        sa.UniqueConstraint('name', name=op.f('uq_data_centre_name')),
    )
    op.create_table(
        'probe_worker',
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('site', sa.String(length=64), nullable=False),
        sa.Column('started_at', UTCDateTime(), nullable=False),
        sa.Column('last_seen', UTCDateTime(), nullable=False),
        sa.Column('stopped_at', UTCDateTime(), nullable=True),
        sa.Column('runs', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_probe_worker')),
    )
    op.create_index(op.f('ix_probe_worker_site'), 'probe_worker', ['site'])
    # SQLite adds a column with a REFERENCES clause in place (its value is NULL everywhere).
    with op.batch_alter_table('pool') as batch_op:
        batch_op.add_column(sa.Column('data_centre_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f('fk_pool_data_centre_id_data_centre'), 'data_centre', ['data_centre_id'], ['id']
        )
    with op.batch_alter_table('probe_schedule') as batch_op:
        batch_op.add_column(sa.Column('data_centre_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f('fk_probe_schedule_data_centre_id_data_centre'), 'data_centre',
            ['data_centre_id'], ['id'],
        )
    op.add_column('probe_run', sa.Column(
        'site', sa.String(length=64), nullable=False, server_default='default'))
    op.add_column('probe_run', sa.Column('claimed_by', sa.String(length=200), nullable=True))
    op.add_column('probe_run', sa.Column('claim', sa.String(length=64), nullable=True))
    op.add_column('probe_run', sa.Column('enqueued_at', UTCDateTime(), nullable=True))
    op.add_column('probe_run', sa.Column(
        'attempts', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('probe_run') as batch_op:
        batch_op.alter_column('site', server_default=None)
        batch_op.alter_column('attempts', server_default=None)
    op.add_column('job_run', sa.Column('args', sa.JSON(), nullable=True))
    op.add_column('job_run', sa.Column('payload', sa.LargeBinary(), nullable=True))
    op.add_column('job_run', sa.Column('phrase', sa.JSON(), nullable=True))
    op.add_column('job_run', sa.Column('enqueued_at', UTCDateTime(), nullable=True))
    _status_check(NEW_STATUS)


def downgrade():
    op.execute("DELETE FROM job_run WHERE status = 'queued'")
    _status_check(OLD_STATUS)
    with op.batch_alter_table('job_run') as batch_op:
        batch_op.drop_column('enqueued_at')
        batch_op.drop_column('phrase')
        batch_op.drop_column('payload')
        batch_op.drop_column('args')
    with op.batch_alter_table('probe_run') as batch_op:
        for name in ('attempts', 'enqueued_at', 'claim', 'claimed_by', 'site'):
            batch_op.drop_column(name)
    with op.batch_alter_table('probe_schedule') as batch_op:
        batch_op.drop_constraint('fk_probe_schedule_data_centre_id_data_centre', type_='foreignkey')
        batch_op.drop_column('data_centre_id')
    with op.batch_alter_table('pool') as batch_op:
        batch_op.drop_constraint('fk_pool_data_centre_id_data_centre', type_='foreignkey')
        batch_op.drop_column('data_centre_id')
    op.drop_index(op.f('ix_probe_worker_site'), table_name='probe_worker')
    op.drop_table('probe_worker')
    op.drop_table('data_centre')
