"""sites register, issued reports and certificates; the sites' finding kinds and change requests

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 05:00:00

"""
from alembic import op
import sqlalchemy as sa



revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OLD_KINDS = ('unallocated_in_use', 'quarantined_in_use', 'reclaimed_in_use', 'allocated_dark',
             'ptr_unregistered', 'ptr_mismatch', 'blocklisted')
NEW_KINDS = OLD_KINDS + ('site_no_icp', 'site_no_approval', 'site_interactive_shared')


def _kinds(kinds):
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def _finding_kinds(kinds):
    # SQLite rebuilds the table (batch mode keeps its other named CHECK constraints).
    with op.batch_alter_table('finding', recreate='auto') as batch_op:
        batch_op.drop_constraint(op.f('ck_finding_finding_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_finding_finding_kind'), _kinds(kinds))


def _request_targets(targets):
    with op.batch_alter_table('change_request', recreate='auto') as batch_op:
        batch_op.drop_constraint(op.f('ck_change_request_target_kind'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_change_request_target_kind'),
            "target IN (" + ", ".join(f"'{t}'" for t in targets) + ")",
        )


def upgrade():
    op.create_table('site',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('sublessee_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('domain', sa.String(length=253), nullable=False),
    sa.Column('urls', sa.JSON(), nullable=False),
    sa.Column('icp_number', sa.String(length=64), nullable=True),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('approval_ref', sa.String(length=200), nullable=True),
    sa.Column('interactive', sa.String(length=16), nullable=True),
    sa.Column('admin_accounts', sa.JSON(), nullable=False),
    sa.Column('addresses', sa.JSON(), nullable=False),
    sa.Column('valid_from', sa.DateTime(), nullable=False),
    sa.Column('valid_to', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('valid_to IS NULL OR valid_to >= valid_from', name=op.f('ck_site_interval')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_site_customer_id_customer')),
    sa.ForeignKeyConstraint(['sublessee_id'], ['sublessee.id'], name=op.f('fk_site_sublessee_id_sublessee')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site'))
    )
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_site_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_site_domain'), ['domain'], unique=False)
        batch_op.create_index(batch_op.f('ix_site_sublessee_id'), ['sublessee_id'], unique=False)
    op.create_table('site_revision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_site_revision_site_id_site')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site_revision'))
    )
    with op.batch_alter_table('site_revision', schema=None) as batch_op:
        batch_op.create_index('ix_site_revision_site_recorded', ['site_id', 'recorded_at'], unique=False)
    op.create_table('issued_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('issued_by', sa.String(length=200), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('anchor_seq', sa.Integer(), nullable=False),
    sa.Column('anchor_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_issued_report_customer_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_issued_report'))
    )
    with op.batch_alter_table('issued_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_issued_report_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_issued_report_issued_at'), ['issued_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_issued_report_name'), ['name'], unique=False)
    _finding_kinds(NEW_KINDS)
    _request_targets(('customer', 'allocation', 'site'))


def downgrade():
    op.execute("DELETE FROM finding WHERE kind LIKE 'site_%'")
    op.execute("DELETE FROM change_request WHERE target = 'site'")
    _request_targets(('customer', 'allocation'))
    _finding_kinds(OLD_KINDS)
    op.drop_table('issued_report')
    op.drop_table('site_revision')
    op.drop_table('site')
