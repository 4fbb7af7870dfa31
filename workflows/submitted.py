"""What `ray job submit` gave the process it runs: the working directory it unpacked.

`ray job submit --working-dir .` copies the directory into the head node's Ray session
(`.../runtime_resources/working_dir_files/_ray_pkg_...`) and starts the command there; Ray
deletes that copy when it no longer needs it. Anything a job keeps there, a relative
`--output` or a SQLite MLflow store, is lost with it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def submitted_working_dir() -> Path | None:
    """The temporary working directory of this process when `ray job submit` started it
    with `--working-dir` (the current directory then), else None."""
    config = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if not config:
        return None
    try:
        working_dir = json.loads(config).get("runtime_env", {}).get("working_dir")
    except (ValueError, AttributeError):
        return None
    return Path.cwd().resolve() if working_dir else None


def in_submitted_working_dir(path: str | os.PathLike) -> bool:
    """Whether the local `path` lies in `submitted_working_dir` (deleted with the job)."""
    here = submitted_working_dir()
    return here is not None and Path(path).resolve().is_relative_to(here)
