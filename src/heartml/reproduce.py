"""Rebuild a registered model version from what was logged, and check that it comes out the same.

Inputs, from the registry: the version's run (data sha256, config hash, seed, library versions,
git commit) and its pipeline run's evaluation_results.json (the full config). The local raw data
must hash to the logged sha256; the split is redone with the logged split settings, then
train_model retrains that algorithm with the logged config and seed.

Verdict: every logged CV fold metric, CV summary, test metric, test interval and the tuning
score must equal the rebuilt one within TOLERANCE (absolute). With the same library versions
the rebuild is bit for bit; the tolerance only absorbs the last-digit noise of a different BLAS.
When it fails, the report names the inputs that differ from the logged ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from heartml.errors import HeartmlError
from heartml.settings import Settings

TOLERANCE = 1e-9  # absolute, on every compared metric
Progress = Callable[[str], None]


class ReproduceError(HeartmlError):
    """The version cannot be rebuilt (nothing to rebuild it from); one line for the user."""


@dataclass(frozen=True)
class InputCheck:
    name: str  # "data sha256", "config hash", "seed", "scikit-learn", "git commit", ...
    logged: str
    local: str

    @property
    def same(self) -> bool:
        return self.logged == self.local


@dataclass(frozen=True)
class MetricCheck:
    name: str  # e.g. cv_fold.roc_auc[3], test.brier, test_ci.f1.ci_low
    logged: float
    rebuilt: float

    @property
    def difference(self) -> float:
        if math.isnan(self.logged) and math.isnan(self.rebuilt):
            return 0.0
        return abs(self.rebuilt - self.logged)

    def within(self, tolerance: float) -> bool:
        return self.difference <= tolerance  # False for NaN: a missing metric is a mismatch


@dataclass
class Reproduction:
    model_name: str
    version: str
    run_id: str
    algorithm: str
    inputs: list[InputCheck]
    metrics: list[MetricCheck] = field(default_factory=list)
    params: tuple[dict[str, Any], dict[str, Any]] | None = None  # (logged, rebuilt) tuned params
    tolerance: float = TOLERANCE
    notes: list[str] = field(default_factory=list)

    def input(self, name: str) -> InputCheck | None:
        return next((check for check in self.inputs if check.name == name), None)

    @property
    def data_differs(self) -> bool:
        check = self.input("data sha256")
        return check is not None and not check.same

    @property
    def mismatched_metrics(self) -> list[MetricCheck]:
        return [m for m in self.metrics if not m.within(self.tolerance)]

    @property
    def params_differ(self) -> bool:
        return self.params is not None and self.params[0] != self.params[1]

    @property
    def reproduced(self) -> bool:
        return (
            not self.data_differs
            and bool(self.metrics)
            and not self.mismatched_metrics
            and not self.params_differ
        )

    @property
    def differing_inputs(self) -> list[InputCheck]:
        return [check for check in self.inputs if not check.same]

    @property
    def max_difference(self) -> float:
        return max((m.difference for m in self.metrics), default=math.nan)

    def explanation(self) -> list[str]:
        """Lines for the user: the verdict, then what differs."""
        if self.data_differs:
            check = self.input("data sha256")
            assert check is not None
            return [
                f"data differs: local sha256 {check.local}, logged {check.logged}",
                "not rebuilt: the same code on other data cannot give the logged metrics",
            ]
        if self.reproduced:
            return [
                f"reproduced: {len(self.metrics)} metrics equal within {self.tolerance:g} "
                f"(max |Δ| {self.max_difference:.3g})"
            ]
        lines = []
        worst = sorted(self.mismatched_metrics, key=lambda m: -m.difference)
        if worst:
            lines.append(
                f"not reproduced: {len(worst)} of {len(self.metrics)} metrics differ by more "
                f"than {self.tolerance:g}, e.g. "
                + ", ".join(
                    f"{m.name} logged {m.logged:.12g} rebuilt {m.rebuilt:.12g}" for m in worst[:3]
                )
            )
        if self.params_differ:
            assert self.params is not None
            lines.append(
                f"not reproduced: tuned parameters differ: logged {self.params[0]}, "
                f"rebuilt {self.params[1]}"
            )
        differing = self.differing_inputs
        if differing:
            lines += [
                f"{check.name} differs: local {check.local}, logged {check.logged}"
                for check in differing
            ]
        else:
            lines.append(
                "no recorded input differs (data, config, seed, library versions, git commit): "
                "look for an unrecorded one (CPU/BLAS, environment variables)"
            )
        return lines


# --------------------------------------------------------------------------------------------
# Pure pieces


def flat_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Every number a model run logged about its quality, under one flat name each."""
    flat: dict[str, float] = {}
    for name, values in summary.get("cv_fold_metrics", {}).items():
        for fold, value in enumerate(values):
            flat[f"cv_fold.{name}[{fold}]"] = _number(value)
    for name, stats in summary.get("cv_metrics", {}).items():
        for key, value in stats.items():
            flat[f"cv.{name}.{key}"] = _number(value)
    for name, value in summary.get("test_metrics", {}).items():
        flat[f"test.{name}"] = _number(value)
    for name, interval in summary.get("test_ci", {}).items():
        for key, value in interval.items():
            flat[f"test_ci.{name}.{key}"] = _number(value)
    if "best_inner_score" in summary.get("tuning", {}):
        flat["tuning.best_inner_score"] = _number(summary["tuning"]["best_inner_score"])
    return flat


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def compare_metrics(logged: dict[str, Any], rebuilt: dict[str, Any]) -> list[MetricCheck]:
    """One check per logged metric (a metric the rebuild lacks compares as NaN: a mismatch)."""
    expected, actual = flat_metrics(logged), flat_metrics(rebuilt)
    return [
        MetricCheck(name, value, actual.get(name, math.nan)) for name, value in expected.items()
    ]


def compare_inputs(
    tags: dict[str, str],
    local_sha256: str,
    config_hash: str,
    seed: int,
    versions: dict[str, str],
    git_commit: str | None,
) -> list[InputCheck]:
    checks = [
        InputCheck("data sha256", tags.get("data_sha256", "(not logged)"), local_sha256),
        InputCheck("config hash", tags.get("config_hash", "(not logged)"), config_hash),
        InputCheck("seed", tags.get("seed", "(not logged)"), str(seed)),
    ]
    for key, logged in sorted(tags.items()):
        if key.startswith("version."):
            name = key.removeprefix("version.")
            checks.append(InputCheck(name, logged, versions.get(name, "(not installed)")))
    checks.append(
        InputCheck("git commit", tags.get("git_commit", "unknown"), git_commit or "unknown")
    )
    return checks


# --------------------------------------------------------------------------------------------
# The rebuild


def reproduce(
    settings: Settings, model_name: str, version: str, progress: Progress | None = None
) -> Reproduction:
    from heartml.catalog import Catalog
    from heartml.config import ConfigError, parse_config
    from heartml.data.acquire import RawData, sha256_bytes
    from heartml.data.parse import parse_records
    from heartml.data.prepare import prepare
    from heartml.data.schema import validate
    from heartml.package.manifest import SPEC_FILE
    from heartml.provenance import git_commit, library_versions
    from heartml.spec import spec_from_text
    from heartml.tracking.lineage import version_lineage
    from heartml.tracking.registry import Registry
    from heartml.train import train_model

    report = progress or (lambda _m: None)
    report(f"reading {model_name} version {version} from {settings.tracking_uri}")
    registry = Registry.connect(settings)
    lineage = version_lineage(registry, model_name, version)
    if lineage.results is None or "config" not in lineage.results:
        raise ReproduceError(
            f"{model_name} version {version}: its pipeline run "
            f"{lineage.parent_run_id or '(none)'} has no evaluation_results.json artifact, so "
            "the config it was trained with is unknown"
        )
    try:
        config = parse_config(lineage.results["config"], source="the logged config")
    except ConfigError as exc:
        raise ReproduceError(f"{exc}: this code cannot read the logged config") from None
    algorithm = lineage.tags.get("algorithm") or str(lineage.summary.get("algorithm", ""))
    if algorithm not in config.models:
        raise ReproduceError(f"the logged config has no model {algorithm!r}")

    spec_text = registry.run_text(lineage.run_id, SPEC_FILE)
    if spec_text is None:
        raise ReproduceError(
            f"{model_name} version {version}: its run has no dataset spec (registered before "
            "models carried their spec), so the features it was trained with are unknown"
        )
    spec = spec_from_text(spec_text, "the logged dataset spec")
    catalog = Catalog(
        settings.resolved_root, spec, settings.catalog.spec_file, settings.packages_dir
    )
    path = catalog.raw_path
    content = path.read_bytes() if path.is_file() else None
    local_sha = sha256_bytes(content) if content is not None else f"(no file at {path})"
    result = Reproduction(
        model_name,
        str(version),
        lineage.run_id,
        algorithm,
        compare_inputs(
            lineage.tags,
            local_sha,
            config.config_hash(),
            config.seed,
            library_versions(),
            git_commit(settings.resolved_root),
        ),
    )
    if result.data_differs or content is None:
        return result

    split = lineage.provenance.get("split", {})
    test_size = float(split.get("test_size", config.split.test_size))
    split_seed = int(split.get("seed", config.seed))
    report("rebuilding the split")
    raw = RawData(
        content, "local copy", str(path), local_sha, datetime.now(UTC).isoformat(timespec="seconds")
    )
    parsed = parse_records(content, spec)
    prepared = prepare(parsed.frame, validate(parsed, spec), raw, spec, test_size, split_seed)
    # As read back from data/processed: a fresh 0..n-1 index.
    train = prepared.train.reset_index(drop=True)
    test = prepared.test.reset_index(drop=True)
    logged_sizes = (lineage.results.get("n_train"), lineage.results.get("n_test"))
    if logged_sizes != (len(train), len(test)):
        result.notes.append(
            f"split sizes differ: logged train/test {logged_sizes[0]}/{logged_sizes[1]}, "
            f"rebuilt {len(train)}/{len(test)}"
        )
    report(f"retraining {algorithm} (seed {config.seed})")
    model = train_model(algorithm, train, test, spec, config, progress=report)
    rebuilt = model.summary()
    result.metrics = compare_metrics(lineage.summary, rebuilt)
    result.params = (
        _plain(lineage.summary.get("best_params", {})),
        _plain(rebuilt["best_params"]),
    )
    return result


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as JSON gives them back (so a logged 1.0 and a rebuilt 1.0 compare equal)."""
    import json

    return dict(json.loads(json.dumps(params, default=str)))
