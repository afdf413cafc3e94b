"""upscale jobs, the picture an upscale was made from, each job's estimate when queued

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("upscale", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("estimate", sa.JSON(), nullable=True))
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_image_id", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_images_source_image_id", ["source_image_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index("ix_images_source_image_id")
        batch_op.drop_column("source_image_id")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("estimate")
        batch_op.drop_column("upscale")
