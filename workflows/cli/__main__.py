"""`python -m workflows.cli`: the `sessionflow` command."""

from workflows.cli import main

main()
