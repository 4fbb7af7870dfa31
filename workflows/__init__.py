"""The jobs, their distribution over Ray, their tracking in MLflow, and the CLI.

The only package that imports ray or mlflow. Its subpackages, outermost first:

- `cli`: the `sessionflow` command line; parses (options derived from each job's
  config) and prints. Only `main` imports it: the console script, which installs the
  stop handlers (`errors.stop_on_signals`) before that import.
- `jobs`: one module per job, each a config dataclass and `run(config) -> result`,
  which decides the engine (Ray or one process) in one place.
- `distributed`: Ray Data (the runtime, the staging shuffle, the data jobs, the
  scoring job) and `training`: Ray Train (the loop and each model's task).
- `tracking`: MLflow (the store, registry and aliases, the pyfunc models, run
  comparison).

Beside them `config` (YAML and dataclass configs, no typer), `errors` (what a user can
put right, for every layer) and `figures` (matplotlib). May import `sessions/`,
`synth/`, `hierarchies/`, `models/`.
"""
