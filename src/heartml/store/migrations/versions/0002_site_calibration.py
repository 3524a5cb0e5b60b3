"""Per-site recalibration: the model's own probability beside the calibrated one served.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

`raw_probability` is the ONNX graph's probability when a site calibration changed it (null: no
calibration applied, the served `probability` is the model's own); `calibration_version` is the
site calibration's version (heartml.calibration). Both nullable: rows stored before this
revision, and every row without a calibration, need nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite's ALTER TABLE is limited; alembic copies the table where needed.
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("raw_probability", sa.Double, nullable=True))
        batch.add_column(sa.Column("calibration_version", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("calibration_version")
        batch.drop_column("raw_probability")
