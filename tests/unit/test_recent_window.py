"""The recent labelled window of `heartml track` (heartml.recent_window) when there is nothing
to score: no store, an empty store, only predictions without outcomes or older than the window.
Each is "no labelled window" in the decision, and the decision itself is unchanged."""

from __future__ import annotations

import pytest

from heartml.config import PromotionConfig
from heartml.recent_window import window_evidence
from heartml.settings import Settings
from heartml.spec import DatasetSpec
from heartml.store.engine import create_engine, upgrade
from heartml.store.outcomes import Outcome, record_outcomes
from heartml.tracking.promotion import NO_WINDOW, WindowEvidence, decide
from heartml.tracking.versions import ChampionInfo, RegisteredVersion
from stored_predictions import store_predictions

pytestmark = pytest.mark.task3


def must_not_load() -> object:
    raise AssertionError("a model was loaded for an empty window")


MODELS = {"candidate": must_not_load, "champion": must_not_load}


def store(
    settings: Settings, spec: DatasetSpec, cleveland_rows: list[list[float]], age_days: float
) -> str:
    url = f"sqlite:///{settings.resolved_root / 'store.db'}"
    engine = create_engine(url)
    upgrade(engine, create_parent=True)
    ids = [f"r{i}" for i in range(len(cleveland_rows))]
    store_predictions(engine, spec, ids, cleveland_rows, age_days=age_days)
    record_outcomes(engine, [Outcome(i, 0, i.endswith(("1", "3"))) for i in ids[:4]])
    engine.dispose()
    return url


def test_no_store_is_no_labelled_window_and_creates_none(project: Settings) -> None:
    path = project.resolved_root / "absent" / "predictions.db"
    settings = project.model_copy(update={"store_url": f"sqlite:///{path}"})
    said: list[str] = []
    assert window_evidence(settings, MODELS, said.append) == WindowEvidence()
    assert not path.exists() and not path.parent.exists()
    assert any("no prediction store" in line for line in said), said


def test_an_unreadable_store_is_no_labelled_window(project: Settings) -> None:
    path = project.resolved_root / "not-a-database.db"
    path.write_text("this is not SQLite")
    settings = project.model_copy(update={"store_url": f"sqlite:///{path}"})
    said: list[str] = []
    assert window_evidence(settings, MODELS, said.append) == WindowEvidence()
    assert path.read_text() == "this is not SQLite"  # nothing written to it
    assert any("cannot be read" in line for line in said), said


@pytest.mark.parametrize("age_days", [0.0, 31.0])
def test_outcomes_outside_the_window_or_none_are_no_labelled_window(
    project: Settings, heart_spec: DatasetSpec, cleveland: object, age_days: float
) -> None:
    """Four labelled predictions 31 days old (the window is 30 days): none in the window. With
    age 0 the same store has four: the window is read (the models are asked for)."""
    frame = cleveland  # type: ignore[assignment]
    rows = frame[list(heart_spec.raw_names)].iloc[:6].to_numpy(dtype=float).tolist()  # type: ignore[attr-defined]
    url = store(project, heart_spec, rows, age_days)
    settings = project.model_copy(update={"store_url": url})
    if age_days:
        assert window_evidence(settings, MODELS, lambda _m: None) == WindowEvidence()
    else:
        with pytest.raises(AssertionError, match="a model was loaded"):
            window_evidence(settings, MODELS, lambda _m: None)


def test_the_decision_names_no_labelled_window_and_is_otherwise_unchanged() -> None:
    tags = {"data_sha256": "a" * 64, "cv_scheme": "x", "cv_roc_auc": "0.9"}
    current = ChampionInfo.from_tags("m", "1", "r1", tags, "models:/m@champion")
    candidate = RegisteredVersion("svm", "heart_disease_svm", "2", "r2", 0.9)
    policy = PromotionConfig()
    without = decide(candidate, tags, current, policy)
    with_window = decide(candidate, tags, current, policy, window=WindowEvidence())
    assert with_window.promote == without.promote
    assert with_window.reason == f"{without.reason}; {NO_WINDOW}"
    assert with_window.statistics == {**without.statistics, "window_rows": 0}
    # No champion: nothing to compare, no clause.
    assert (
        decide(candidate, tags, None, policy, window=WindowEvidence()).reason == "no champion yet"
    )
