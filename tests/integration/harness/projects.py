"""Temporary projects laid out like the repository (data/raw, configs, `src` linked to the
repository's), so the seed's commands run verbatim with the project as working directory."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.processes import HEARTML, PYTHON, REPO_ROOT, subprocess_env
from heartml.spec import load_spec

ALGORITHMS = ("random_forest", "logistic_regression", "gradient_boosting", "svm")
RAW_FEATURES = load_spec(REPO_ROOT / "configs" / "datasets" / "uci_heart.yaml").raw_names
MODEL_NAMES = tuple(f"heart_disease_{a}" for a in ALGORITHMS)


def small_config_text() -> str:
    """The shipped config, shrunk so the four models train in seconds (same keys, tiny grids)."""
    raw = yaml.safe_load((REPO_ROOT / "configs" / "pipeline.yaml").read_text())
    raw["evaluation"].update(cv_folds=3, cv_repeats=2, permutation_repeats=2)
    raw["tuning"].update(cv_folds=3, cv_repeats=1)
    models = raw["models"]
    models["logistic_regression"]["search_space"] = {"C": [0.1, 1.0]}
    models["random_forest"]["params"]["n_estimators"] = 30
    models["random_forest"]["search_space"] = {"max_depth": [3, None]}
    models["gradient_boosting"]["params"]["n_estimators"] = 30
    models["gradient_boosting"]["search_space"] = {"max_depth": [2, 3]}
    models["svm"]["search_space"] = {"C": [0.3, 1.0]}
    return yaml.safe_dump(raw, sort_keys=False)


def new_project(root: Path) -> Path:
    """data/raw, the dataset specs, the small config, and `src` linked to the repository's (for
    the seed scripts)."""
    root.mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "data" / "raw", root / "data" / "raw")
    shutil.copytree(REPO_ROOT / "configs" / "datasets", root / "configs" / "datasets")
    (root / "configs" / "pipeline.yaml").write_text(small_config_text())
    (root / "src").symlink_to(REPO_ROOT / "src", target_is_directory=True)
    return root


@dataclass
class Project:
    """A project folder and the tracking store its commands use (None: the embedded store)."""

    root: Path
    tracking_uri: str | None = None

    @property
    def env(self) -> dict[str, str]:
        return subprocess_env(self.tracking_uri)

    @property
    def store_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.root / 'mlflow.db'}"

    def run(
        self, *command: str, timeout: float = 300, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A command as a user types it in the project folder: `python src/...` or `heartml ...`."""
        argv = list(command)
        if argv[0] == "python":
            argv[0] = PYTHON
        elif argv[0] == "heartml":
            argv[0] = HEARTML
        return subprocess.run(
            argv,
            cwd=self.root,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *command: str) -> subprocess.Popen[str]:
        argv = [PYTHON if command[0] == "python" else command[0], *command[1:]]
        return subprocess.Popen(
            argv,
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def track(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = self.run("python", "src/experiment_tracking.py", *args, timeout=timeout)
        assert result.returncode == 0, describe(result)
        return result


@dataclass
class TrackedTwice:
    """A project after two `python src/experiment_tracking.py` runs on the same data/config."""

    backend: str
    project: Project
    first: Any  # CompletedProcess of each run
    second: Any
    snapshot: dict[str, Any]  # the registry right after the second run


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"{' '.join(map(str, result.args))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )


TRAINED_OUTPUTS = ("data/processed", "models", "reports")  # what Task 1-2 leave behind
