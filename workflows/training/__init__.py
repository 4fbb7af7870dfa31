"""Ray Train: the one training loop and each model's part of it.

The room: `loop` (the per-worker loop: batches, restore, step, evaluate and
checkpoint; the `TorchTrainer` around it; `Trained` and `TrainOutcome`), `session`
(`SessionTask`) and `hierarchy` (`HierarchyTask`, its data and evaluation). The jobs
in `workflows.jobs` drive them and log the result to MLflow.

May import: ray.train, torch, mlflow (rank 0 logs), `models/`, `sessions/`, `hierarchies/`,
`workflows.tracking` and `workflows.distributed.runtime`. Not the CLI, and not
`workflows.jobs` except for config types under `TYPE_CHECKING`.
"""
