"""Where everything lives: every path and file name of a project, for one dataset.

The catalog is derived from the settings (the project root) and the dataset spec; stages ask it
where their inputs and outputs are and never spell a file name themselves. The reference dataset
(uci_heart) keeps the seed's layout (data/processed/, models/, reports/ at the root); another
dataset gets the same layout under workspaces/<name>/, so two datasets never overwrite each
other. Packages of every dataset share packages/ (their folder names carry the dataset's prefix)
and the MLflow store (their registered names and experiments differ).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from heartml.spec import DatasetSpec, load_spec

DEFAULT_DATASET = "uci_heart"
DATASETS_DIR = Path("configs") / "datasets"

# File names inside data/processed/ (the stem of the full clean data comes from the spec).
TRAIN_FILE = "train.parquet"
TEST_FILE = "test.parquet"
REJECTED_FILE = "rejected_rows.csv"
QUALITY_FILE = "data_quality_report.json"
PROVENANCE_FILE = "provenance.json"
# Inside models/.
RESULTS_FILE = "evaluation_results.json"
# The embedded prediction store (SQLite), inside monitoring/.
PREDICTION_STORE_FILE = "predictions.db"


def spec_path(root: Path, dataset: str) -> Path:
    """A dataset name (configs/datasets/<name>.yaml) or a path to a spec file."""
    if dataset.endswith((".yaml", ".yml")) or "/" in dataset:
        path = Path(dataset)
        return path if path.is_absolute() else root / path
    return root / DATASETS_DIR / f"{dataset}.yaml"


@dataclass(frozen=True)
class Catalog:
    root: Path
    spec: DatasetSpec
    spec_file: Path
    packages_dir: Path

    @classmethod
    def load(cls, root: Path, dataset: str, packages_dir: Path | None = None) -> Catalog:
        path = spec_path(root, dataset)
        return cls(root, load_spec(path), path, packages_dir or root / "packages")

    @cached_property
    def workspace(self) -> Path:
        if self.spec.name == DEFAULT_DATASET:
            return self.root
        return self.root / "workspaces" / self.spec.name

    # -- data ----------------------------------------------------------------------------------

    @property
    def raw_dir(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def raw_path(self) -> Path:
        """The shipped copy (or, for a generated source, the acquired copy) of the raw data."""
        if self.spec.source.shipped_copy:
            return self.root / self.spec.source.shipped_copy
        return self.workspace / "data" / "raw" / f"{self.spec.name}.csv"

    @property
    def processed_dir(self) -> Path:
        return self.workspace / "data" / "processed"

    @property
    def clean_file(self) -> Path:
        return self.processed_dir / f"{self.spec.processed_stem}.parquet"

    @property
    def train_file(self) -> Path:
        return self.processed_dir / TRAIN_FILE

    @property
    def test_file(self) -> Path:
        return self.processed_dir / TEST_FILE

    @property
    def rejected_file(self) -> Path:
        return self.processed_dir / REJECTED_FILE

    @property
    def quality_file(self) -> Path:
        return self.processed_dir / QUALITY_FILE

    @property
    def provenance_file(self) -> Path:
        return self.processed_dir / PROVENANCE_FILE

    # -- models and reports -------------------------------------------------------------------

    @property
    def models_dir(self) -> Path:
        return self.workspace / "models"

    @property
    def results_file(self) -> Path:
        return self.models_dir / RESULTS_FILE

    def model_dir(self, algorithm: str) -> Path:
        return self.models_dir / algorithm

    @property
    def reports_dir(self) -> Path:
        return self.workspace / "reports"

    @property
    def eda_report_dir(self) -> Path:
        return self.reports_dir / "eda"

    @property
    def evaluation_report_dir(self) -> Path:
        return self.reports_dir / "evaluation"

    @property
    def monitoring_dir(self) -> Path:
        return self.workspace / "monitoring"

    @property
    def prediction_store_file(self) -> Path:
        return self.monitoring_dir / PREDICTION_STORE_FILE

    # -- registry and packages ------------------------------------------------------------------

    def registered_name(self, algorithm: str) -> str:
        return f"{self.spec.model_name_prefix}_{algorithm}"

    def package_dir(self, algorithm: str, version: str) -> Path:
        return self.packages_dir / f"{self.spec.package_prefix}_{algorithm}_v{version}"
