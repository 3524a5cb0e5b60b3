"""`heartml score --site`: the site's active calibration applied after the graph, the model's own
probability written beside it, site and calibration version recorded with --record; a site
without a calibration scored raw; a bad site name refused in one line.

Oracle: scipy's expit/logit on the uncalibrated run's probabilities; the stored rows read back
with sqlite3.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from batch_helpers import MODEL_NAME, REPO_ROOT, THRESHOLD, VERSION

from heartml.batch.contract import PROBABILITY_COLUMN, RAW_PROBABILITY_COLUMN
from heartml.sites import SITE_RULE
from site_calibrations import make_calibration, offline

pytestmark = [pytest.mark.scale, pytest.mark.monitoring]

A = {"intercept": -1.2, "slope": 0.7}


def test_score_site_applies_the_sites_calibration_and_records_it(
    tmp_path: Path,
    package_dir: Path,
    cleveland_rows: pd.DataFrame,
    heartml_cli: Callable[..., Any],
    make_cli_env: Callable[..., dict[str, str]],
) -> None:
    root = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "configs", root / "configs")
    shutil.copytree(package_dir, root / "packages" / package_dir.name)
    make_calibration(
        root / "calibrations", "A", 3, model_name=MODEL_NAME, model_version=VERSION, **A
    )
    cleveland_rows.drop(columns=["target"], errors="ignore").to_csv(root / "in.csv", index=False)

    def score(*args: str) -> Any:
        return heartml_cli(
            "score", "--input", "in.csv", *args, cwd=root, env=make_cli_env(HEARTML_ROOT=str(root))
        )

    plain = score("--output", "plain.csv")
    at_a = score("--output", "a.csv", "--site", "A", "--record")
    at_b = score("--output", "b.csv", "--site", "B", "--record")
    for result in (plain, at_a, at_b):
        assert result.returncode == 0, result.stderr
    assert "calibration: site A v3 (logistic) applied" in at_a.stdout
    assert "none for site B" in at_b.stdout
    raw = pd.read_csv(root / "plain.csv")
    a, b = pd.read_csv(root / "a.csv"), pd.read_csv(root / "b.csv")
    assert (a[RAW_PROBABILITY_COLUMN] - raw[PROBABILITY_COLUMN]).abs().max() <= 1e-12
    expected = offline(raw[PROBABILITY_COLUMN].to_numpy(), **A)
    assert abs(a[PROBABILITY_COLUMN].to_numpy() - expected).max() <= 1e-9
    assert (a["prediction"] == (a[PROBABILITY_COLUMN] >= THRESHOLD).astype(int)).all()
    assert RAW_PROBABILITY_COLUMN not in b and b[PROBABILITY_COLUMN].equals(raw[PROBABILITY_COLUMN])
    with sqlite3.connect(root / "monitoring" / "predictions.db") as db:
        stored = db.execute(
            "select site, calibration_version, count(*), count(raw_probability) "
            "from predictions group by site order by site"
        ).fetchall()
    assert stored == [("A", 3, len(a), len(a)), ("B", None, len(b), 0)]

    for bad in ("bad/site", "café", "x" * 65):
        refused = score("--output", "x.csv", "--site", bad)
        assert refused.returncode == 2
        assert refused.stderr.strip().splitlines() == [
            f"error: --site: site {bad!r} is not allowed; expected {SITE_RULE}"
        ]
