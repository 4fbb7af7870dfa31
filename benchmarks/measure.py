"""Wall time and peak memory of a child process and all its descendants (Ray's raylet
and workers included), sampled twice a second."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil


def tree_rss(proc: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def run_measured(cmd: Sequence[str], cwd: Path, env: dict | None = None) -> tuple[float, float]:
    """Run `cmd` to the end: (seconds, peak GiB of its process tree); exits if it fails."""
    start = time.perf_counter()
    child = psutil.Popen(list(cmd), cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(child))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = child.wait()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if code:
        sys.exit(f"{' '.join(cmd[:4])} ... failed ({code})")
    return seconds, peak / 1024**3
