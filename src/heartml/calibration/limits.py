"""How many outcomes a site calibration needs: light (no scikit-learn), for the CLI's options and
the fitting alike."""

from __future__ import annotations

# Below 100 outcomes a logistic recalibration's slope is too uncertain to act on: Riley et al.
# (2020, BMJ) and Van Calster et al. (2016) ask for >= 100 events and non-events to validate a
# model's calibration; 100 outcomes is the least we ask (`--min-outcomes` raises it).
MIN_OUTCOMES = 100
# Isotonic regression overfits small calibration sets (Niculescu-Mizil & Caruana 2005: worse
# than Platt scaling below ~1000 calibration cases; Van Calster et al. 2019 agree).
MIN_ISOTONIC_OUTCOMES = 1000
