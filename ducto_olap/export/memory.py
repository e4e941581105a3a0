"""How a run allocates: glibc's thresholds for ADBC's buffers, jemalloc for Arrow's.

An export moves gigabytes through buffers that live for a fraction of a second.
On a small machine, handing their pages back to the kernel and faulting fresh
ones in costs whole seconds of CPU: the kernel zeroes every page it hands out.
Both settings here keep that churn low without letting resident memory grow
with the ledger.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 1 << 20
_TRIM_THRESHOLD_BYTES = 8 << 20


@contextlib.contextmanager
def export_memory() -> Iterator[None]:
    """Allocate as an export should while inside; Arrow's default pool is restored after.

    The pool is process-wide, so Arrow allocations of other threads during the
    run come from it too: they work the same, from another allocator. Runs that
    overlap (two exporters on two threads) share one switch: the pool the first
    found is restored when the last leaves, and what the run's pool still caches
    then goes back to the OS. glibc's thresholds (:func:`tune_malloc`) stay set.
    """
    tune_malloc()
    pool = _jemalloc_pool()
    if pool is None:
        yield
        return

    _lend_pool(pool)
    try:
        yield
    finally:
        _return_pool(pool)


_pool_lock = threading.Lock()
_pool_borrowers = 0
_pool_found: pa.MemoryPool | None = None


def _lend_pool(pool: pa.MemoryPool) -> None:
    import pyarrow as pa

    global _pool_borrowers, _pool_found
    with _pool_lock:
        if _pool_borrowers == 0:
            _pool_found = pa.default_memory_pool()
            pa.set_memory_pool(pool)
        _pool_borrowers += 1


def _return_pool(pool: pa.MemoryPool) -> None:
    import pyarrow as pa

    global _pool_borrowers, _pool_found
    with _pool_lock:
        _pool_borrowers -= 1
        if _pool_borrowers == 0 and _pool_found is not None:
            pa.set_memory_pool(_pool_found)
            _pool_found = None
            pool.release_unused()


@functools.cache
def tune_malloc() -> None:
    """Keep glibc's large buffers mmapped and a few MB at each heap's top (Linux only).

    ADBC's batches are malloc'd, allocated on a reader thread and freed on the
    writer's. glibc's mmap threshold grows with every large free, after which
    multi-megabyte buffers come from arenas that fragment: peak RSS then crept up
    with the ledger's size (557 MB at 20M rows against 450 MB at 10M). Pinned,
    such buffers stay mmapped and go back to the kernel on free.

    Pinning it also freezes the trim threshold at its 128 KB default, so every
    free of a few hundred KB at a heap's top gave those pages back and the next
    allocation faulted them in again: zstd's context for each Parquet page, about
    90,000 page faults per 10M rows. Hence the trim threshold of its own.

    Both stay set for the rest of the process: glibc has no way to read the
    values they replace.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        return


def _jemalloc_pool() -> pa.MemoryPool | None:
    # Arrow's default, mimalloc, decommits freed pages within milliseconds, and an
    # export's Parquet pages and rollup tables then fault in fresh ones: measured
    # side by side, jemalloc (which keeps them about a second) saved 0.6 s of
    # kernel time per 10M rows at the same peak memory. Not every build has it.
    import pyarrow as pa

    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return None
