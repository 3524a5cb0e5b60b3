"""The drift thresholds, declared once: the service's drift statuses (heartml.serving.drift), the
defaults of the `heartml monitor check` settings and the documentation read them from here.
(deploy/prometheus/alerts.yml cannot import; tests/deploy compares its PSI threshold with
PSI_SIGNIFICANT.)"""

from __future__ import annotations

# Population stability index: < 0.1 stable, 0.1-0.25 moderate, > 0.25 significant (the usual
# credit-scoring convention).
PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25
# Two-sample KS statistic D (the largest gap between the two ECDFs). A fixed D rather than a
# p-value: with thousands of stored predictions every trivial shift has p ~ 0, while D = 0.2 means
# a fifth of the patients sit on the other side of some value than the training data predicts.
KS_SIGNIFICANT = 0.2
