"""What produced an output or a run: the command line, sessionflow's version, the git
commit of its sources and the versions of its key libraries (no heavy imports here:
versions come from the installed packages' metadata)."""

from __future__ import annotations

import functools
import shlex
import sys
from pathlib import Path

LIBRARIES = ("torch", "transformers", "ray", "mlflow", "polars", "pyarrow", "scikit-learn", "geoopt")


@functools.cache
def provenance() -> dict[str, str]:
    """What produced a run or an output: sessionflow's version, the git commit of its
    sources (when they are a git checkout; `-dirty` with uncommitted changes), and the
    versions of its key libraries."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    tags = {}
    for name in ("sessionflow", *LIBRARIES):
        try:
            tags[f"version.{name}"] = version(name)
        except PackageNotFoundError:
            continue
    root = Path(__file__).resolve().parents[1]  # the sources' checkout, if they are one
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
        tags["git.commit"] = commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout (an installed package): the version says it
    return tags


def command_line() -> str:
    """The command that runs this process, as a shell would take it (`sessionflow ...`
    for the command-line tool)."""
    program = Path(sys.argv[0]).name if sys.argv else ""
    return shlex.join(["sessionflow" if program == "sessionflow" else program, *sys.argv[1:]])
