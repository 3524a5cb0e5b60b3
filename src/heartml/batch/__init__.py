"""Batch scoring: a file of patients in, a file of scores out, with a verified package's model.

- Streams the input in chunks (Arrow batches for parquet, pandas chunks for CSV and header-less
  files), so memory stays flat whatever the file size (`io`).
- Validates every row by the package's own dataset spec, with the rules every door shares
  (heartml.spec.rules), vectorised per column (`parse`, `validate`). A column that is not
  `required` may be unknown: the row is scored, the model imputes the field, and the `imputed`
  output column names it. Invalid rows go to a rejects file with their row number and reasons.
- The same chunk function (`score`) runs locally or on Dask workers (`engines`), so both
  engines give identical results; the client writes the partitions in input order (`writers`).

Only a problem with the file itself (unreadable, a spec column absent, a line with too many
fields) stops the run, with one line naming it; a bad row never does.
"""

from heartml.batch.contract import (
    IMPUTED_COLUMN,
    REASONS_COLUMN,
    ROW_COLUMN,
    SCORE_COLUMNS,
    BatchError,
    Contract,
    contract,
)
from heartml.batch.engines import (
    DEFAULT_CHUNK_SIZE,
    ENGINES,
    Engine,
    ScoreSummary,
    default_rejects_path,
    score_file,
)
from heartml.batch.model import ScoringModel, scoring_model
from heartml.batch.score import risk_levels, score_frame
from heartml.batch.validate import validate_frame

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ENGINES",
    "IMPUTED_COLUMN",
    "REASONS_COLUMN",
    "ROW_COLUMN",
    "SCORE_COLUMNS",
    "BatchError",
    "Contract",
    "Engine",
    "ScoreSummary",
    "ScoringModel",
    "contract",
    "default_rejects_path",
    "risk_levels",
    "score_file",
    "score_frame",
    "scoring_model",
    "validate_frame",
]
