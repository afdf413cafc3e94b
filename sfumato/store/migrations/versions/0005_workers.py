"""workers: generation workers on other processes and machines (Celery)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 18:10:00
"""

import sqlalchemy as sa
from alembic import op

from sfumato.store.tables import DateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("dispatched_at", DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_jobs_worker", ["worker"], unique=False)
    op.create_table(
        "workers",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=32), nullable=False),
        sa.Column("queue", sa.String(length=160), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("jobs_done", sa.Integer(), nullable=False),
        sa.Column("model_loads", sa.Integer(), nullable=False),
        sa.Column("started_at", DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("workers")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_worker")
        batch_op.drop_column("dispatched_at")
        batch_op.drop_column("worker")
