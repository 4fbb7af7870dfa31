"""`python -m workflows`: the `sessionflow` command (`workflows.main`), for a Python
whose console scripts are not on PATH (a cluster's job, `benchmarks/gpu.sh`)."""

from workflows.main import main

main()
