"""Model monitoring from the prediction store: realised performance over a window of labelled
predictions (`performance`), performance estimated from the probabilities before outcomes
arrive (`estimation`), and the per-model-version figures the service reports (`live`).

numpy only (the serving image has no scipy, scikit-learn or pandas)."""
