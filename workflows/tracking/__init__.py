"""MLflow: the tracking store, the model registry and the models it serves.

The room: `uri` (the tracking URI, without importing mlflow: what Ray tasks hand
on), `store` (training runs, registering, the `champion` alias, a model URI's run),
`session_model`, `hierarchy_model` and `segmenter_model` (the pyfunc models with
their signatures, and loading them back for scoring) and `compare` (runs side by side).

May import: mlflow, `models/`, `sessions/`. Not the jobs, the Ray layers or the CLI.
"""
