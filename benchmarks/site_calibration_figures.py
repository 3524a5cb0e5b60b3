"""Recalibration on simulated sites: Brier score and ROC-AUC before and after, with intervals.

    .venv/bin/python benchmarks/site_calibration_figures.py [--patients 600] [--fit 100] [--seeds 20]

The sites are tests/simulated_sites.py's: a logistic regression fitted on half the Cleveland
rows, patients drawn from the other half to another prevalence, and some with one measurement
read differently. Per site: heartml.calibration.fitting.fit_site (the candidates, CV and the
one-SE choice `heartml recalibrate` runs) on the first `--fit` outcomes, scored on the site's
LATER patients (never seen by the fit): Brier and ROC-AUC of the model's own probability and of
the calibrated one, with 95% bootstrap intervals (heartml.monitoring.performance), beside the
Brier score of a prevalence-only model (the fitted outcomes' rate for everyone). Then the same
over `--seeds` draws of each site: how often the calibrated Brier score was lower, and the mean
change. The gate is not applied here (it would keep the raw model where the gain is small).
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

SITES: dict[str, tuple[float, dict[str, float] | None]] = {
    "prevalence 0.10": (0.10, None),
    "prevalence 0.20": (0.20, None),
    "prevalence 0.80": (0.80, None),
    "prevalence 0.93": (0.93, None),  # the highest of UCI's own four sites
    "prevalence 0.20, oldpeak +1": (0.20, {"oldpeak": 1.0}),
    "prevalence 0.50, thalach -25": (0.50, {"thalach": -25.0}),
}


def shown(value: float, interval: tuple[float, float] | None) -> str:
    if interval is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=600)
    parser.add_argument("--fit", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()

    from heartml.calibration.fitting import fit_site
    from heartml.monitoring.performance import bootstrap_intervals, brier, roc_auc
    from simulated_sites import draw_site, site_model

    model = site_model()
    print(f"fit on the first {args.fit} outcomes, scored on the next {args.patients - args.fit}")
    print(
        f"{'site':<30}{'method':<14}{'Brier before':<24}{'Brier after':<24}"
        f"{'prevalence-only':<17}{'AUC before':<24}{'AUC after':<24}"
    )
    for name, (prevalence, shift) in SITES.items():
        site = draw_site(model, prevalence, args.patients, seed=10, shift=shift)
        p, y = site.probability, site.outcome
        fitted = fit_site(p[: args.fit], y[: args.fit])
        later_p, later_y = p[args.fit :], y[args.fit :]
        after = fitted.chosen.fitted(later_p)
        before_ci = bootstrap_intervals(later_y, later_p, 1000, seed=1)
        after_ci = bootstrap_intervals(later_y, after, 1000, seed=1)
        baseline = brier(later_y, np.full_like(later_y, y[: args.fit].mean()))
        print(
            f"{name:<30}{fitted.chosen.method:<14}"
            f"{shown(brier(later_y, later_p), before_ci.get('brier')):<24}"
            f"{shown(brier(later_y, after), after_ci.get('brier')):<24}{baseline:<17.3f}"
            f"{shown(roc_auc(later_y, later_p), before_ci.get('roc_auc')):<24}"
            f"{shown(roc_auc(later_y, after), after_ci.get('roc_auc')):<24}"
        )
    print(f"\nover {args.seeds} draws of each site:")
    for name, (prevalence, shift) in SITES.items():
        changes, auc_changes, methods = [], [], []
        for seed in range(args.seeds):
            site = draw_site(model, prevalence, args.patients, seed=100 + 7 * seed, shift=shift)
            p, y = site.probability, site.outcome
            fitted = fit_site(p[: args.fit], y[: args.fit])
            later_p, later_y = p[args.fit :], y[args.fit :]
            after = fitted.chosen.fitted(later_p)
            changes.append(brier(later_y, after) - brier(later_y, later_p))
            auc_changes.append(roc_auc(later_y, after) - roc_auc(later_y, later_p))
            methods.append(fitted.chosen.method)
        lower = sum(change < 0 for change in changes)
        chosen = ", ".join(f"{m} {methods.count(m)}" for m in sorted(set(methods)))
        print(
            f"{name:<30} Brier lower in {lower}/{args.seeds}, mean change "
            f"{np.mean(changes):+.4f} (worst {max(changes):+.4f}); largest AUC change "
            f"{max(np.abs(auc_changes)):.2g}; chosen: {chosen}"
        )


if __name__ == "__main__":
    main()
