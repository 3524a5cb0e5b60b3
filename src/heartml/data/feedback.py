"""`heartml data --with-feedback`: the labelled predictions of the prediction store as more rows of
the dataset, checked by the same rules as the source's.

A prediction with an outcome is a patient the model saw, with what turned out to be true: its
stored raw inputs become the row's fields and its outcome the label (written in the spec's label
coding: the value of `target.allowed` the spec's positive rule maps to that outcome, the outcome
itself when it maps to itself). The rows are read through the same measured-value conversion as
the source file's (heartml.spec.rules) and appended after its rows, so validation
(heartml.data.schema) judges both alike and quarantines a bad feedback row exactly as a bad
source row. The data version's identity is the sha256 of the source's bytes and the feedback
rows together (`FeedbackRows.sha256`), so the tracking gate sees that the data changed.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from heartml.data.parse import Parsed, positive
from heartml.errors import DataError
from heartml.spec import TARGET, DatasetSpec, rules
from heartml.store.query import Selection, read


@dataclass(frozen=True)
class FeedbackRows:
    frame: pd.DataFrame  # the spec's raw columns, the label column and the target, as parsed
    request_ids: list[str]
    first: float | None  # POSIX seconds of the oldest and newest prediction
    last: float | None

    def sha256(self, source_sha256: str) -> str:
        """The identity of the source plus these rows (as CSV, in store order)."""
        text = io.StringIO()
        self.frame.to_csv(text, index=False, float_format="%.17g")
        digest = hashlib.sha256(source_sha256.encode())
        digest.update(text.getvalue().encode())
        return digest.hexdigest()


def label_values(spec: DatasetSpec) -> dict[int, float]:
    """outcome (0/1) -> a label value the spec's positive rule maps to it."""
    allowed = np.asarray(spec.target.allowed, dtype=np.float64)
    targets = positive(spec, allowed)
    found: dict[int, float] = {}
    for outcome in (0, 1):
        matches = allowed[targets == outcome]
        if len(matches) == 0:
            raise DataError(
                f"target.allowed {list(spec.target.allowed)}: no label value is "
                f"{'positive' if outcome else 'negative'} under {spec.target.positive!r}"
            )
        found[outcome] = float(outcome) if outcome in matches else float(matches[0])
    return found


def feedback_rows(
    engine: Engine, spec: DatasetSpec, selection: Selection = Selection(labelled=True)
) -> FeedbackRows:
    """The selected predictions with an outcome (by default every one), oldest first, as parsed
    rows of this spec."""
    stored = read(engine, replace(selection, labelled=True), with_inputs=True)
    assert stored.inputs is not None
    names = list(spec.raw_names)
    label = spec.target.column
    labels = label_values(spec)
    values = np.array(
        [[np.nan if (v := row.get(n)) is None else v for n in names] for row in stored.inputs],
        dtype=np.float64,
    ).reshape(len(stored), len(names))
    frame = pd.DataFrame(values, columns=names)
    for name, column in spec.columns.items():
        frame[name] = rules.measured_array(column, frame[name].to_numpy())
    frame[label] = [labels[int(o)] for o in stored.outcome]
    frame[TARGET] = positive(spec, frame[label].to_numpy())
    times = stored.created_at
    return FeedbackRows(
        frame=frame,
        request_ids=list(stored.request_id),
        first=float(times.min()) if len(times) else None,
        last=float(times.max()) if len(times) else None,
    )


def with_feedback(parsed: Parsed, feedback: FeedbackRows) -> tuple[Parsed, pd.Index]:
    """The source's parsed rows followed by the feedback rows (index after the source's), and
    the index labels of the feedback rows."""
    start = int(parsed.frame.index.max()) + 1 if len(parsed.frame) else 0
    added = feedback.frame[list(parsed.frame.columns)].copy()
    added.index = pd.RangeIndex(start, start + len(added))
    return Parsed(pd.concat([parsed.frame, added]), parsed.problems), added.index
