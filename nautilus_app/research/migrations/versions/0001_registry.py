"""Registry schema: strategies, parameter_sets, sweeps, runs, run_components, metrics.

Revision ID: 0001_registry
Revises: (none, first revision)
Create Date: 2026-11-23 07:18:22.942861
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001_registry'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('strategies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('strategy_type', sa.String(length=100), nullable=False),
    sa.Column('strategy_path', sa.String(length=300), nullable=False),
    sa.Column('config_path', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_strategies')),
    sa.UniqueConstraint('name', name=op.f('uq_strategies_name'))
    )
    with op.batch_alter_table('strategies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_strategies_strategy_type'), ['strategy_type'], unique=False)

    op.create_table('parameter_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('strategy_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('params_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['strategy_id'], ['strategies.id'], name=op.f('fk_parameter_sets_strategy_id_strategies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_parameter_sets')),
    sa.UniqueConstraint('strategy_id', 'params_hash', name=op.f('uq_parameter_sets_strategy_id_params_hash')),
    sa.UniqueConstraint('strategy_id', 'version', name=op.f('uq_parameter_sets_strategy_id_version'))
    )
    with op.batch_alter_table('parameter_sets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_parameter_sets_strategy_id'), ['strategy_id'], unique=False)

    op.create_table('sweeps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('strategy_id', sa.Integer(), nullable=True),
    sa.Column('objective', sa.String(length=100), nullable=True),
    sa.Column('direction', sa.String(length=10), nullable=True),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('spec_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('summary', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['strategy_id'], ['strategies.id'], name=op.f('fk_sweeps_strategy_id_strategies'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sweeps')),
    sa.UniqueConstraint('name', name=op.f('uq_sweeps_name'))
    )
    with op.batch_alter_table('sweeps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sweeps_strategy_id'), ['strategy_id'], unique=False)

    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('sweep_id', sa.Integer(), nullable=True),
    sa.Column('trial_number', sa.Integer(), nullable=True),
    sa.Column('shard', sa.String(length=300), nullable=True),
    sa.Column('label', sa.String(length=300), nullable=True),
    sa.Column('config', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('config_hash', sa.String(length=64), nullable=False),
    sa.Column('code_version', sa.String(length=80), nullable=False),
    sa.Column('data_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('data_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('catalog', sa.String(length=1000), nullable=False),
    sa.Column('bar_types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('results_root', sa.String(length=1000), nullable=True),
    sa.Column('results_run_id', sa.String(length=300), nullable=True),
    sa.Column('results_path', sa.String(length=1000), nullable=True),
    sa.Column('objective', sa.Float(), nullable=True),
    sa.Column('metrics', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('worker', sa.String(length=300), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('iterations', sa.BigInteger(), nullable=True),
    sa.Column('orders', sa.Integer(), nullable=True),
    sa.Column('engine_seconds', sa.Float(), nullable=True),
    sa.Column('wall_seconds', sa.Float(), nullable=True),
    sa.Column('peak_rss_mb', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['sweep_id'], ['sweeps.id'], name=op.f('fk_runs_sweep_id_sweeps'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs')),
    sa.UniqueConstraint('run_key', name=op.f('uq_runs_run_key'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_config_hash'), ['config_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_sweep_id'), ['sweep_id'], unique=False)

    op.create_table('metrics',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_metrics_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'name', name=op.f('pk_metrics'))
    )
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.create_index('ix_metrics_name_value', ['name', 'value'], unique=False)

    op.create_table('run_components',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('strategy_id', sa.Integer(), nullable=False),
    sa.Column('parameter_set_id', sa.Integer(), nullable=False),
    sa.Column('strategy_sha256', sa.String(length=64), nullable=False),
    sa.Column('contribution_usdt', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['parameter_set_id'], ['parameter_sets.id'], name=op.f('fk_run_components_parameter_set_id_parameter_sets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_run_components_run_id_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['strategy_id'], ['strategies.id'], name=op.f('fk_run_components_strategy_id_strategies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'position', name=op.f('pk_run_components'))
    )
    with op.batch_alter_table('run_components', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_components_parameter_set_id'), ['parameter_set_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_components_strategy_id'), ['strategy_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('run_components', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_components_strategy_id'))
        batch_op.drop_index(batch_op.f('ix_run_components_parameter_set_id'))

    op.drop_table('run_components')
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.drop_index('ix_metrics_name_value')

    op.drop_table('metrics')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_sweep_id'))
        batch_op.drop_index(batch_op.f('ix_runs_status'))
        batch_op.drop_index(batch_op.f('ix_runs_kind'))
        batch_op.drop_index(batch_op.f('ix_runs_config_hash'))

    op.drop_table('runs')
    with op.batch_alter_table('sweeps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sweeps_strategy_id'))

    op.drop_table('sweeps')
    with op.batch_alter_table('parameter_sets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_parameter_sets_strategy_id'))

    op.drop_table('parameter_sets')
    with op.batch_alter_table('strategies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_strategies_strategy_type'))

    op.drop_table('strategies')
