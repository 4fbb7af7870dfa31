"""One module per job: its config dataclass and `run(config) -> result`.

The room: `ingest`, `segment`, `mine`, `train_session`, `train_hierarchy`, `score`,
`annotate`, `evaluate_segmentation`, `evaluate_pairs`, `evaluate_hierarchy`,
`evaluate_reformulation`, `synth`, `registry` (compare, promote) and `demo`, which
runs the others' `run` with the configs it holds; `common` holds the settings many
jobs share. A job decides where it runs (Ray or one process) and writes one report
whichever engine ran it.

May import: `workflows.distributed`, `workflows.training`, `workflows.tracking`,
`workflows.config`, `workflows.figures` and the data and model packages. Not the CLI.
"""
