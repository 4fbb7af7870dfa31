"""Using the machine's cores from one Python process: polars, numpy and pyarrow
release the GIL in their heavy loops, so a small thread pool keeps them all busy."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Threads a pool uses when not told: the machine's cores, at most 4 (1 when unknown)."""
    return max(1, min(4, os.cpu_count() or 1))


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> Iterator[R]:
    """fn over items on a thread pool, results in input order, at most `workers`
    items ahead of the consumer (so memory stays bounded)."""
    workers = workers or default_workers()
    if workers == 1:
        yield from map(fn, items)
        return
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sessionflow") as pool:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
