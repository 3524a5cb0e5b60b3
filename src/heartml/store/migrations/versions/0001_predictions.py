"""The predictions table: every scored record, its inputs, its answer, its outcome and site.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out in full (not imported from heartml.store.schema): a migration is history and must
keep creating what it created when later versions change the schema module.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("site", sa.String(64), nullable=True),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("imputed", sa.JSON, nullable=False),
        sa.Column("probability", sa.Double, nullable=False),
        sa.Column("prediction", sa.SmallInteger, nullable=False),
        sa.Column("risk_level", sa.String(32), nullable=False),
        sa.Column("threshold", sa.Double, nullable=False),
        sa.Column("outcome", sa.SmallInteger, nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome_received_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("request_id", "row", name="uq_predictions_request_row"),
    )
    op.create_index("ix_predictions_created_at", "predictions", ["created_at"])
    op.create_index(
        "ix_predictions_model_created",
        "predictions",
        ["model_name", "model_version", "created_at"],
    )
    op.create_index("ix_predictions_site_created", "predictions", ["site", "created_at"])


def downgrade() -> None:
    op.drop_table("predictions")
