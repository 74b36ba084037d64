"""The worker-local cache of prepared models and parsed targets files (a Dask worker plugin).

Its own module so that importing dcsim (and dcsim.ensemble) does not import Dask: only opening
a cluster, or a task running on a worker, does.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from distributed.diagnostics.plugin import WorkerPlugin

T = TypeVar("T")

__all__ = ["WorkerCache", "cached"]


class WorkerCache(WorkerPlugin):
    """What a worker process keeps between tasks: prepared models and parsed targets files.

    A task carries the scenario as JSON (`ModelSpec`), and preparing it again (reading and
    resolving every rule file) costs more than a small run; the tasks of one command all share
    one or two models, so each worker prepares each once. Scope: one worker process (a local
    cluster lives as long as its command); at most `size` entries, the least recently used
    dropped first (a prepared model is about 2 MB whatever the scale). Entries are keyed by
    the sha256 of the JSON they were built from, so a stale entry is never returned.
    Registered by `dask_client` under one name, idempotent: a second command on the same
    cluster shares the workers' cache rather than replacing it.
    """

    name = "dcsim-cache"
    idempotent = True

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock: threading.Lock | None = None  # made on the worker (locks do not pickle)

    def setup(self, worker: Any) -> None:  # noqa: ANN401 - a distributed Worker
        self._items = OrderedDict()
        self._lock = threading.Lock()

    def teardown(self, worker: Any) -> None:  # noqa: ANN401 - a distributed Worker
        self._items.clear()

    def get(self, key: str, build: Callable[[], T]) -> T:
        """The entry of `key`, built by `build()` if absent."""
        assert self._lock is not None, "WorkerCache used before its setup"
        with self._lock:  # a worker with several threads: build each entry once
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            value = build()
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return value


def cached(text: str, build: Callable[[], T]) -> T:
    """On a worker with a WorkerCache: the entry built from `text`; elsewhere build()."""
    from distributed import get_worker

    try:
        cache = get_worker().plugins.get(WorkerCache.name)
    except ValueError:  # not on a worker
        cache = None
    if not isinstance(cache, WorkerCache):
        return build()
    return cache.get(hashlib.sha256(text.encode()).hexdigest(), build)
