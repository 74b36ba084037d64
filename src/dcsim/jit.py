"""Compilation settings shared by every compiled kernel, and where compiled code is cached.

Kernels allocate nothing: every array is made in Python and passed in. That lets them run
without Numba's reference counting (`_nrt=False`), whose atomic counter updates on every array
view otherwise cost a third of the run time and make two threads fight over the same counters.

Numba's on-disk cache only notices changes to the file a kernel is written in, not to the
constants it imports (the column of each rule value, the state layout). A stale kernel would
silently read the wrong rule, so the cache lives in a folder named by a hash of the whole
package's source: any change to any module compiles everything afresh.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

KERNEL = {"cache": True, "_nrt": False}


def _source_hash() -> str:
    h = hashlib.sha256()
    for p in sorted(Path(__file__).parent.glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _cache_dir() -> Path:
    base = os.environ.get("NUMBA_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root / "dcsim-numba" / _source_hash()


CACHE_DIR = _cache_dir()
numba.config.CACHE_DIR = str(CACHE_DIR)
