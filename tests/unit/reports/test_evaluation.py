"""The evaluation report: one self-contained HTML page comparing the models, figures embedded."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest
from page_checks import (
    DATA_URI,
    PNG_MAGIC,
    assert_figure_embedded_and_written,
    assert_headings_and_links,
    assert_index_page,
    assert_offline,
    assert_shared_layout,
    heart_words,
    section,
    visible_text,
)

from heartml.errors import ReportError
from heartml.evaluate import (
    METRICS,
    classification_metrics,
    corrected_paired_t_test,
    curves,
    summarize_folds,
)
from heartml.reports.evaluation import write_evaluation_report
from heartml.spec import DatasetSpec, load_spec

pytestmark = pytest.mark.task2

BREAST_SPEC_FILE = (
    Path(__file__).resolve().parents[3] / "configs" / "datasets" / "breast_cancer.yaml"
)

# Dict order differs from the expected page order on purpose: the best model must come first.
MODEL_NAMES = ("logistic_regression", "random_forest", "gradient_boosting", "svm")
BEST = "random_forest"
SKILL = {"random_forest": 3, "svm": 2, "logistic_regression": 1, "gradient_boosting": 0}
FIGURE_SECTIONS = (
    "cv-folds",
    "roc",
    "pr",
    "calibration",
    "confusion",
    "importance",
    "subgroup-auc",
    "missing-blocks",
)
# The page's headings in order (taken from the page before the move to templates); the two
# subgroup tables are titled by split. A lost section or figure fails here.
SECTION_HEADINGS = (
    "h2 Summary",
    "h2 Metrics",
    "h3 Probability quality (no threshold)",
    "h3 Decisions at the threshold",
    "h2 Models",
    "h2 ROC-AUC across CV folds",
    "h2 ROC curves",
    "h2 Precision-recall curves",
    "h2 Calibration",
    "h2 Confusion matrices",
    "h2 Permutation importance",
    "h2 ROC-AUC by subgroup",
    "h2 Subgroup metrics",
    "h3 Training split, CV out-of-fold (n = 150)",
    "h3 Held-out test split (n = 50)",
    "h2 What a missing block costs",
    "h2 Provenance",
)
HOSTILE = '<script>alert("x")</script> & <b>'
CV_FOLDS, CV_REPEATS, THRESHOLD = 5, 2, 0.5
SUBGROUPS = ("sex=female", "sex=male", "age_group=young", "age_group=elderly")
NO_AUC_GROUP = "age_group=young"  # only one class in the test split: AUC is None
FEATURES = ("age", "sex", "cp", "thalach", "ca")
# Recorded in another order than the spec's (exercise_test, lab_values, imaging): the page
# follows the spec.
BLOCKS = {
    "imaging": ["ca", "thal"],
    "exercise_test": ["slope", "oldpeak", "thalach", "exang"],
    "lab_values": ["chol", "fbs"],
}


@dataclass(frozen=True)
class Dataset:
    """What a synthetic results document of one dataset holds."""

    subgroups: tuple[str, ...]
    no_auc_group: str
    features: tuple[str, ...]
    blocks: dict[str, list[str]]


HEART = Dataset(SUBGROUPS, NO_AUC_GROUP, FEATURES, BLOCKS)
BREAST = Dataset(
    ("size_group=small", "size_group=medium", "size_group=large", "size_group=very_large"),
    "size_group=small",
    ("mean_radius", "mean_texture", "worst_area", "radius_se"),
    {
        "standard_errors": ["radius_se", "texture_se", "perimeter_se"],
        "worst_values": ["worst_radius", "worst_area"],
    },
)


# --- a synthetic results document, shaped like artifacts.evaluation_results ----------------


def _subgroups(rng: np.random.Generator, split: str, dataset: Dataset) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(dataset.subgroups):
        groups[name] = {
            "n": 10 + 17 * i,
            "prevalence": float(rng.uniform(0.2, 0.6)),
            "roc_auc": None
            if split == "test" and name == dataset.no_auc_group
            else float(rng.uniform(0.7, 1)),
            "accuracy": float(rng.uniform(0.6, 0.95)),
            "recall": float(rng.uniform(0.6, 0.95)),
            "precision": float(rng.uniform(0.6, 0.95)),
            "brier": float(rng.uniform(0.05, 0.2)),
        }
    return groups


def _masked_blocks(rng: np.random.Generator, dataset: Dataset) -> dict[str, Any]:
    blocks = {}
    for block, columns in dataset.blocks.items():
        mean = float(rng.uniform(0.6, 0.85))
        std = float(rng.uniform(0.02, 0.08))
        blocks[block] = {
            "columns": columns,
            "roc_auc": {"mean": mean, "std": std, "ci_low": mean - 2 * std, "ci_high": mean + std},
        }
    return blocks


def model_summary(algorithm: str, dataset: Dataset = HEART) -> dict[str, Any]:
    skill = SKILL[algorithm]
    rng = np.random.default_rng(skill)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.5 + (y - 0.5) * (0.3 + 0.05 * skill) + rng.normal(0, 0.2, len(y)), 0.01, 0.99)
    y_train, p_train, y_test, p_test = y[:150], p[:150], y[150:], p[150:]
    folds = {
        metric: [
            float(v)
            for v in np.clip(rng.normal(0.78 + 0.03 * skill, 0.04, CV_FOLDS * CV_REPEATS), 0, 1)
        ]
        for metric in METRICS
    }
    test_metrics = classification_metrics(y_test, p_test, THRESHOLD)
    params: dict[str, Any] = {"C": 0.1 * (skill + 1)}
    if algorithm == "svm":
        params["gamma"] = "scale"
    return {
        "algorithm": algorithm,
        "estimator": f"{algorithm.title().replace('_', '')}Classifier",
        "best_params": params,
        "estimator_params": {**params, "random_state": 7},
        "tuning": {
            "scoring": "roc_auc",
            "cv_folds": 5,
            "cv_repeats": 2,
            "candidates": 4 + skill,
            "best_inner_score": 0.8 + 0.01 * skill,
        },
        "cv_metrics": {m: summarize_folds(v, 1 / CV_FOLDS) for m, v in folds.items()},
        "cv_fold_metrics": folds,
        "test_metrics": test_metrics,
        "test_ci": {
            m: {"ci_low": v - 0.05 - 0.001 * skill, "ci_high": min(1.0, v + 0.04)}
            for m, v in test_metrics.items()
        },
        "oof_curves": curves(y_train, p_train, THRESHOLD, 5),
        "test_curves": curves(y_test, p_test, THRESHOLD, 5),
        "subgroups": {
            "cv_out_of_fold": _subgroups(rng, "cv_out_of_fold", dataset),
            "test": _subgroups(rng, "test", dataset),
        },
        "permutation_importance": {
            f: {"mean": float(rng.normal(0.02, 0.02)), "std": float(rng.uniform(0, 0.01))}
            for f in dataset.features
        },
        "masked_blocks": _masked_blocks(rng, dataset),
        "seconds": 1.5 + skill,
    }


def make_results(dataset: Dataset = HEART) -> dict[str, Any]:
    return {
        "created_at": "2030-01-02T03:04:05+00:00",
        "data_sha256": "d" * 10 + "e" * 54,
        "config_hash": "c" * 8 + "f" * 56,
        "config": {
            "seed": 7,
            "evaluation": {
                "cv_folds": CV_FOLDS,
                "cv_repeats": CV_REPEATS,
                "threshold": THRESHOLD,
                "calibration_bins": 5,
            },
        },
        "seed": 7,
        "n_train": 150,
        "n_test": 50,
        "threshold": THRESHOLD,
        "best_algorithm": BEST,
        "selection_rule": "highest mean repeated-CV ROC-AUC on the training split",
        "feature_names": {"raw": list(dataset.features), "engineered": list(dataset.features)},
        "library_versions": {"python": "3.11.7", "scikit-learn": "9.9.9"},
        "git_commit": "0123456789abcdef",
        "models": {name: model_summary(name, dataset) for name in MODEL_NAMES},
    }


# --- reading the page back -----------------------------------------------------------------


class _Tables(HTMLParser):
    """Rows of every table with an id: [{"attrs": tr attributes, "cells": [(attrs, text)]}]."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self._table: str | None = None
        self._cell: tuple[dict[str, str | None], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "table" and attributes.get("id"):
            self._table = attributes["id"]
            self.tables[self._table] = []
        elif self._table and tag == "tr":
            self.tables[self._table].append({"attrs": attributes, "cells": []})
        elif self._table and tag in ("td", "th"):
            self._cell = (attributes, [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif self._table and tag in ("td", "th") and self._cell:
            attributes, text = self._cell
            self.tables[self._table][-1]["cells"].append((attributes, "".join(text)))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell:
            self._cell[1].append(data)


def tables(html: str) -> dict[str, list[dict[str, Any]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def body_rows(html: str, table_id: str) -> dict[str, dict[str, Any]]:
    """Rows of a comparison table by model name."""
    return {
        row["attrs"]["data-model"]: row
        for row in tables(html)[table_id]
        if row["attrs"].get("data-model")
    }


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    document = make_results()
    document["models"]["svm"]["best_params"]["kernel"] = HOSTILE
    return document


@pytest.fixture(scope="module")
def report(
    results: dict[str, Any], heart_spec: DatasetSpec, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out_dir = tmp_path_factory.mktemp("evaluation") / "report"  # must be created
    return write_evaluation_report(results, out_dir, heart_spec)


@pytest.fixture(scope="module")
def html(report: Path) -> str:
    return report.read_text(encoding="utf-8")


# --- tests ---------------------------------------------------------------------------------


def test_returns_index_html_inside_out_dir(report: Path) -> None:
    assert_index_page(report)


def test_page_has_every_section_in_order_and_a_link_to_each(html: str) -> None:
    assert_headings_and_links(html, list(SECTION_HEADINGS), levels="23")


def test_page_uses_the_shared_layout(html: str) -> None:
    assert_shared_layout(html, "UCI Heart Disease (Cleveland): evaluation report", ".honesty")
    header = re.search(r"<header>(.*?)</header>", html, re.DOTALL)
    assert header and "Predicting heart disease (num &gt; 0) against no heart disease" in header[1]


@pytest.mark.parametrize("section_id", FIGURE_SECTIONS)
def test_each_figure_section_embeds_a_png_data_uri(html: str, section_id: str) -> None:
    assert DATA_URI in section(html, section_id)


@pytest.mark.parametrize("section_id", FIGURE_SECTIONS)
def test_each_figure_is_a_valid_png_file_identical_to_the_embedded_one(
    report: Path, html: str, section_id: str
) -> None:
    assert_figure_embedded_and_written(report, html, section_id)


def test_html_loads_nothing_from_the_network(html: str) -> None:
    assert_offline(html)


def test_header_states_choice_rule_provenance_and_honesty(html: str) -> None:
    summary = re.sub(r"\s+", " ", section(html, "summary"))
    assert f"Best model: {BEST}" in summary
    assert "highest mean repeated-CV ROC-AUC on the training split" in summary
    assert "never on the test split" in summary
    assert "d" * 10 + "e" * 2 in summary  # the sha256, shortened
    assert "d" * 10 + "e" * 54 not in summary
    assert "c" * 8 + "f" * 4 in summary
    assert "seed 7" in summary
    assert "n_train = 150" in summary and "n_test = 50" in summary
    assert "optimistic" in summary
    assert "Nadeau-Bengio" in summary
    assert "bootstrap" in summary
    assert "5-fold CV repeated 2 times" in summary
    assert "predicted probability of the positive class, heart disease (num &gt; 0)" in summary


@pytest.mark.parametrize("table_id", ["metrics-probability", "metrics-threshold", "models-table"])
def test_every_model_has_a_row_and_the_best_comes_first_marked(html: str, table_id: str) -> None:
    rows = body_rows(html, table_id)
    assert set(rows) == set(MODEL_NAMES)
    assert next(iter(rows)) == BEST
    for name, row in rows.items():
        marked = "best" in (row["attrs"].get("class") or "").split()
        assert marked == (name == BEST), name
        assert ("best" in row["cells"][0][1]) == (name == BEST)  # the visible badge


def test_metric_tables_show_the_results_numbers(html: str, results: dict[str, Any]) -> None:
    seen: dict[str, set[tuple[str, str]]] = {name: set() for name in MODEL_NAMES}
    for table_id in ("metrics-probability", "metrics-threshold"):
        for name, row in body_rows(html, table_id).items():
            model = results["models"][name]
            for attributes, text in row["cells"][1:]:
                metric, split = attributes["data-metric"], attributes["data-split"]
                if split == "cv":
                    cv = model["cv_metrics"][metric]
                    expected = (
                        f"{cv['mean']:.3f} ± {cv['std']:.3f}"
                        f"[{cv['ci_low']:.3f}, {cv['ci_high']:.3f}]"
                    )
                else:
                    ci = model["test_ci"][metric]
                    expected = (
                        f"{model['test_metrics'][metric]:.3f}"
                        f"[{ci['ci_low']:.3f}, {ci['ci_high']:.3f}]"
                    )
                assert squeeze(text) == squeeze(expected), (name, metric, split)
                seen[name].add((metric, split))
    every = {(metric, split) for metric in METRICS for split in ("cv", "test")}
    assert all(cells == every for cells in seen.values())


def test_best_value_of_a_column_is_emphasised(html: str, results: dict[str, Any]) -> None:
    rows = body_rows(html, "metrics-probability")
    top_cv = max(MODEL_NAMES, key=lambda n: results["models"][n]["cv_metrics"]["roc_auc"]["mean"])
    lowest_brier = min(MODEL_NAMES, key=lambda n: results["models"][n]["test_metrics"]["brier"])
    for name, row in rows.items():
        cells = {
            (a["data-metric"], a["data-split"]): a["class"].split() for a, _ in row["cells"][1:]
        }
        assert ("top" in cells["roc_auc", "cv"]) == (name == top_cv)
        assert ("top" in cells["brier", "test"]) == (name == lowest_brier)  # lower is better


def test_models_table_shows_params_and_the_corrected_test_against_the_best(
    html: str, results: dict[str, Any]
) -> None:
    rows = body_rows(html, "models-table")
    best_folds = results["models"][BEST]["cv_fold_metrics"]["roc_auc"]
    for name, row in rows.items():
        text = " ".join(t for _, t in row["cells"])
        assert "C = " in text
        if name == BEST:
            continue
        other = results["models"][name]["cv_fold_metrics"]["roc_auc"]
        test = corrected_paired_t_test(best_folds, other, 1 / CV_FOLDS)
        assert f"{test['mean_difference']:+.3f} (p = {test['p_value']:.2f})" in text


def test_html_special_characters_in_model_params_are_escaped(html: str) -> None:
    assert "&lt;script&gt;" in html
    assert "&amp; &lt;b&gt;" in html
    assert "<script>" not in html
    assert "<b>" not in html


def test_subgroup_tables_cover_both_splits_with_missing_auc_shown(
    html: str, results: dict[str, Any]
) -> None:
    parsed = tables(html)
    for split, table_id in (
        ("cv_out_of_fold", "subgroups-cv_out_of_fold"),
        ("test", "subgroups-test"),
    ):
        rows = [row for row in parsed[table_id] if row["attrs"].get("data-group")]
        assert {(r["attrs"]["data-group"], r["attrs"]["data-model"]) for r in rows} == {
            (group, name) for group in SUBGROUPS for name in MODEL_NAMES
        }
        for row in rows:
            group, name = row["attrs"]["data-group"], row["attrs"]["data-model"]
            entry = results["models"][name]["subgroups"][split][group]
            values = [t for _, t in row["cells"]][
                -5:
            ]  # ROC-AUC, accuracy, recall, precision, Brier
            expected_auc = "–" if entry["roc_auc"] is None else f"{entry['roc_auc']:.3f}"
            assert values == [
                expected_auc,
                f"{entry['accuracy']:.3f}",
                f"{entry['recall']:.3f}",
                f"{entry['precision']:.3f}",
                f"{entry['brier']:.3f}",
            ]
    labels = re.sub(r"\s+", " ", section(html, "subgroups"))
    assert "By sex and age group." in labels
    assert "fewer than 20 patients" in labels
    assert "Sex: female" in labels
    assert "Age ≤ 40 (young)" in labels


def test_does_not_change_the_results_document(
    results: dict[str, Any], heart_spec: DatasetSpec, tmp_path: Path
) -> None:
    before = copy.deepcopy(results)
    write_evaluation_report(results, tmp_path, heart_spec)
    assert results == before


def test_a_single_model_document_gives_a_full_report(
    heart_spec: DatasetSpec, tmp_path: Path
) -> None:
    document = make_results()
    document["models"] = {BEST: document["models"][BEST]}
    del document["config"]  # older documents: no fold count, so no paired test
    page = write_evaluation_report(document, tmp_path, heart_spec).read_text(encoding="utf-8")
    for section_id in FIGURE_SECTIONS:
        assert DATA_URI in section(page, section_id)
        assert (tmp_path / f"{section_id}.png").read_bytes().startswith(PNG_MAGIC)
    rows = body_rows(page, "metrics-probability")
    assert list(rows) == [BEST]
    assert "best" in rows[BEST]["attrs"]["class"]
    assert ' top"' not in page and " top " not in page  # nothing to beat with one model


def test_no_subgroup_auc_at_all_still_renders_the_tables(
    heart_spec: DatasetSpec, tmp_path: Path
) -> None:
    document = make_results()
    for model in document["models"].values():
        for groups in model["subgroups"].values():
            for entry in groups.values():
                entry["roc_auc"] = None
    page = write_evaluation_report(document, tmp_path, heart_spec).read_text(encoding="utf-8")
    assert '<section id="subgroup-auc">' not in page  # an empty plot would say nothing
    assert "subgroups-test" in page
    assert DATA_URI in section(page, "roc")


def test_a_document_without_models_is_refused(heart_spec: DatasetSpec, tmp_path: Path) -> None:
    document = make_results()
    document["models"] = {}
    with pytest.raises(ReportError, match="no models"):
        write_evaluation_report(document, tmp_path, heart_spec)


def test_leaves_no_figures_open_and_no_global_style_change(
    results: dict[str, Any], heart_spec: DatasetSpec, tmp_path: Path
) -> None:
    font_size = plt.rcParams["font.size"]
    open_before = plt.get_fignums()
    write_evaluation_report(results, tmp_path, heart_spec)
    assert plt.get_fignums() == open_before
    assert plt.rcParams["font.size"] == font_size


# --- what a missing block costs --------------------------------------------------------------


def expected_block_cell(model: dict[str, Any], block: str) -> str:
    """The cell as a reader sees it, from the document's numbers (spaces squeezed)."""
    auc = (
        model["cv_metrics"]["roc_auc"] if block == "" else model["masked_blocks"][block]["roc_auc"]
    )
    text = f"{auc['mean']:.3f} ± {auc['std']:.3f}[{auc['ci_low']:.3f}, {auc['ci_high']:.3f}]"
    if block:
        change = auc["mean"] - model["cv_metrics"]["roc_auc"]["mean"]
        text += f"Δ {change:+.3f}"
    return squeeze(text)


def test_missing_block_table_shows_the_recorded_numbers(html: str, results: dict[str, Any]) -> None:
    parsed = tables(html)["missing-blocks-table"]
    header = [(a.get("data-block"), text.strip()) for a, text in parsed[0]["cells"][1:]]
    # All data first, then the spec's blocks in the spec's order (not the document's).
    assert header == [
        ("", "All data"),
        ("exercise_test", "Exercise test"),
        ("lab_values", "Lab values"),
        ("imaging", "Imaging"),
    ]
    rows = body_rows(html, "missing-blocks-table")
    assert list(rows) == [BEST, "svm", "logistic_regression", "gradient_boosting"]
    for name, row in rows.items():
        model = results["models"][name]
        cells = {a["data-block"]: squeeze(text) for a, text in row["cells"][1:]}
        assert cells == {block: expected_block_cell(model, block) for block, _ in header}, name


def test_missing_block_section_explains_the_measurement_and_names_the_columns(html: str) -> None:
    text = re.sub(r"\s+", " ", section(html, "missing-blocks"))
    assert "fitted on the fold&#39;s training rows" in text
    assert "held-out patients were scored twice" in text
    assert "blanked (unknown at scoring time)" in text
    assert "which the model imputes" in text
    assert "5-fold CV repeated 2 times" in text
    assert (
        "Exercise test</strong> (<code>exercise_test</code>): Slope of peak exercise ST (slope), "
        "ST depression (oldpeak), Maximum heart rate (thalach), Exercise-induced angina (exang)"
    ) in text


def test_a_document_without_masked_blocks_has_no_such_section(
    heart_spec: DatasetSpec, tmp_path: Path
) -> None:
    document = make_results()
    for model in document["models"].values():
        del model["masked_blocks"]  # written before the blocks were measured
    page = write_evaluation_report(document, tmp_path, heart_spec).read_text(encoding="utf-8")
    headings = [h for h in SECTION_HEADINGS if h != "h2 What a missing block costs"]
    assert_headings_and_links(page, headings, levels="23")
    assert not (tmp_path / "missing-blocks.png").exists()


def test_a_block_the_spec_does_not_declare_is_still_shown_after_the_specs(
    heart_spec: DatasetSpec, tmp_path: Path
) -> None:
    document = make_results()
    extra = {"columns": ["cp"], "roc_auc": {"mean": 0.5, "std": 0.1, "ci_low": 0.4, "ci_high": 0.6}}
    document["models"][BEST]["masked_blocks"]["chest_pain"] = extra
    page = write_evaluation_report(document, tmp_path, heart_spec).read_text(encoding="utf-8")
    header = [a.get("data-block") for a, _ in tables(page)["missing-blocks-table"][0]["cells"][1:]]
    assert header == ["", "exercise_test", "lab_values", "imaging", "chest_pain"]
    row = body_rows(page, "missing-blocks-table")["svm"]  # a model without it: shown as missing
    assert squeeze(row["cells"][-1][1]) == squeeze("– ± –[–, –]Δ –")


# --- the same page for the breast-cancer spec ------------------------------------------------


@pytest.fixture(scope="module")
def breast_results() -> dict[str, Any]:
    return make_results(BREAST)


@pytest.fixture(scope="module")
def breast_html(breast_results: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    out_dir = tmp_path_factory.mktemp("breast-evaluation")
    spec = load_spec(BREAST_SPEC_FILE)
    return write_evaluation_report(breast_results, out_dir, spec).read_text(encoding="utf-8")


def test_breast_cancer_page_has_every_section_in_its_own_words(breast_html: str) -> None:
    assert_headings_and_links(breast_html, list(SECTION_HEADINGS), levels="23")
    assert_shared_layout(
        breast_html, "Breast Cancer Wisconsin (Diagnostic): evaluation report", ".honesty"
    )
    assert_offline(breast_html)
    text = visible_text(breast_html)
    assert "Predicting malignant (diagnosis = 0) against benign" in text
    assert "predicted probability of the positive class, malignant (diagnosis = 0)" in text
    assert "By size group." in text and "fewer than 20 tumour samples" in text
    assert "held-out tumour samples were scored twice" in text


def test_breast_cancer_subgroups_are_labelled_by_the_specs_bins(breast_html: str) -> None:
    labels = {
        row["attrs"]["data-group"]: row["cells"][0][1]
        for row in tables(breast_html)["subgroups-test"]
        if row["attrs"].get("data-group") and len(row["cells"]) > 6  # the group's first row
    }
    assert labels == {
        "size_group=small": "Mean radius ≤ 12 (small)",
        "size_group=medium": "Mean radius over 12, up to 15 (medium)",
        "size_group=large": "Mean radius over 15, up to 20 (large)",
        "size_group=very_large": "Mean radius > 20 (very large)",
    }


def test_breast_cancer_missing_blocks_show_its_recorded_numbers(
    breast_html: str, breast_results: dict[str, Any]
) -> None:
    rows = body_rows(breast_html, "missing-blocks-table")
    assert set(rows) == set(MODEL_NAMES)
    for name, row in rows.items():
        model = breast_results["models"][name]
        cells = {a["data-block"]: squeeze(text) for a, text in row["cells"][1:]}
        assert cells == {
            block: expected_block_cell(model, block)
            for block in ("", "standard_errors", "worst_values")
        }
    text = visible_text(section(breast_html, "missing-blocks"))
    assert (
        "Worst values (worst_values): Worst radius (worst_radius), Worst area (worst_area)" in text
    )


def test_breast_cancer_page_has_no_heart_words(breast_html: str, html: str) -> None:
    assert heart_words(visible_text(breast_html)) == []
    assert {"heart", "num", "patients"} <= set(heart_words(visible_text(html)))
