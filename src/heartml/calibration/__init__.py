"""Per-site recalibration: a small, versioned map from the model's probability to a site's own.

A model trained at one hospital ranks patients well elsewhere but is often miscalibrated there
(another prevalence, another way of measuring). Model updating, as the clinical prediction
literature does it: recalibration in the large (the intercept), logistic recalibration (intercept
and slope on the logit), isotonic only with many outcomes; chosen by cross-validated Brier score
on the site's own labelled predictions, gated like a model version.

- `document`: the site calibration file (parameters, the outcomes it was fitted on, its CV
  figures) and `apply`, the arithmetic the server runs after the ONNX graph;
- `files`: where calibrations live beside the packages, their manifests, the active pointer and
  the decision history (the one reader and writer of that layout);
"""
