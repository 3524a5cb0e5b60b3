"""MLflow as the system of record: runs, registered versions, the champion alias and its gate.

The ONE package that imports mlflow (always lazily: importing it costs nothing).
- `registry`: the `Registry` (client + settings): connect, champion, versions, aliases,
  rollback, listing, downloads.
- `runs`: logging one pipeline execution (a parent run, one nested run and version per model).
- `promotion`: the gate, pure (plain data in, a decision out; no mlflow).
- `lineage`: what a registered version was built from.
- `versions`: the version tags and the plain records the others exchange.
- `model_format`: how a pipeline is stored as an MLflow model (skops trusted types, pins).
- `connection`: timeouts and MLflow failures as one-line TrackingErrors.

Import from the modules; this file imports nothing, so that serving's registry mode loads
only what it uses.
"""
