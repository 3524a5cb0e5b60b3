"""A calibration file edited after it was written is refused by name and sha256, and the server's
loader leaves that site on the raw model with the reason. Oracle: hashlib on the edited bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from heartml.calibration.document import CandidateFigures, OutcomeWindow, SiteCalibration
from heartml.calibration.files import (
    CalibrationFileError,
    load_active,
    read_calibration,
    set_active,
    site_dir,
    write_calibration,
)

pytestmark = pytest.mark.monitoring

MODEL, VERSION = "heart_disease_logistic_regression", "3"


def calibration(site: str, intercept: float) -> SiteCalibration:
    return SiteCalibration(
        site=site,
        model_name=MODEL,
        model_version=VERSION,
        version=1,
        method="in_the_large",
        intercept=intercept,
        window=OutcomeWindow(
            first_prediction_at="2026-01-01T00:00:00+00:00",
            last_prediction_at="2026-02-01T00:00:00+00:00",
            outcomes=120,
            positives=90,
        ),
        folds=5,
        cv=[CandidateFigures(method="in_the_large", brier=0.1, log_loss=0.3)],
        created_at="2026-02-02T00:00:00+00:00",
    )


def test_an_edited_calibration_is_refused_and_its_site_served_raw(tmp_path: Path) -> None:
    for site, intercept in (("north", 1.5), ("south", -0.5)):
        write_calibration(tmp_path, calibration(site, intercept))
        set_active(site_dir(tmp_path, MODEL, VERSION, site), 1)
    edited = site_dir(tmp_path, MODEL, VERSION, "north") / "v1" / "calibration.json"
    edited.write_text(edited.read_text().replace("1.5", "2.5"))
    actual = hashlib.sha256(edited.read_bytes()).hexdigest()

    with pytest.raises(CalibrationFileError) as refused:
        read_calibration(edited.parent)
    assert str(edited) in str(refused.value) and f"sha256 {actual} does not match" in str(
        refused.value
    )
    loaded = load_active(tmp_path, MODEL, VERSION)
    assert list(loaded.by_site) == ["south"] and loaded.by_site["south"].intercept == -0.5
    assert "sha256" in loaded.problems["north"] and str(edited) in loaded.problems["north"]
