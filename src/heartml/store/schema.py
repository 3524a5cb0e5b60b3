"""The prediction store's tables (SQLAlchemy Core) and the limits of what goes into them.

The migrations in `migrations/versions/` create these tables; a unit test compares the migrated
database with this metadata (alembic's autogenerate diff must be empty), so the two cannot drift.
Later migrations add columns here and in a new version file together.

One row per scored record: a /predict call is one row (`row` 0), a /predict/batch call one row
per record (`row` = its position in `records`), a `heartml score --record` run one row per
scored input row (`row` = the output's `row`, the input's 1-based data row). `(request_id, row)`
is the key an outcome is sent back with.
"""

from __future__ import annotations

import sqlalchemy as sa

from heartml.sites import SITE_MAX

REQUEST_ID_MAX = 64  # what the service accepts in X-Request-ID (heartml.serving.middleware)
OUTCOMES = (0, 1)
ROW_MAX = 2**31 - 1  # the `row` column is an INTEGER: 32-bit on PostgreSQL
SOURCES = ("api", "batch")  # which door a prediction came through

metadata = sa.MetaData()

# BIGINT on PostgreSQL; INTEGER on SQLite, where only `INTEGER PRIMARY KEY` is the rowid alias.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(REQUEST_ID_MAX), nullable=False),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("spec_hash", sa.String(64), nullable=False),
    sa.Column("site", sa.String(SITE_MAX), nullable=True),
    sa.Column("inputs", sa.JSON, nullable=False),  # raw inputs by name; null = unknown
    sa.Column("imputed", sa.JSON, nullable=False),  # names of the fields the model imputed
    sa.Column("probability", sa.Double, nullable=False),
    sa.Column("prediction", sa.SmallInteger, nullable=False),
    sa.Column("risk_level", sa.String(32), nullable=False),
    sa.Column("threshold", sa.Double, nullable=False),
    sa.Column("outcome", sa.SmallInteger, nullable=True),
    sa.Column("observed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("outcome_received_at", sa.DateTime(timezone=True), nullable=True),
    # A site calibration (heartml.calibration) applied: the model's own probability and the
    # calibration's version. Null: none applied, `probability` is the model's own (0002).
    sa.Column("raw_probability", sa.Double, nullable=True),
    sa.Column("calibration_version", sa.Integer, nullable=True),
    sa.UniqueConstraint("request_id", "row", name="uq_predictions_request_row"),
    sa.Index("ix_predictions_created_at", "created_at"),
    sa.Index("ix_predictions_model_created", "model_name", "model_version", "created_at"),
    sa.Index("ix_predictions_site_created", "site", "created_at"),
)
