"""One CPU thread count for model math in every runner, so a shard's bytes do not depend on where it ran.

Float sums in torch's CPU kernels are split across threads, so the same model on the same input gives
last-bit different output with 1 thread (a Ray worker sets OMP_NUM_THREADS=1) than with 2 (a plain
process); quantised to 16-bit PCM, that flips samples and changes the dataset hash.
"""

from __future__ import annotations

import os

from voxemoset.store.imported import imported


def cpu_threads(configured: int | None) -> int:
    """The thread count to use: the configured one, else every core of this machine."""
    return configured or os.cpu_count() or 1


def pin_cpu_threads(configured: int | None) -> int:
    """Set torch's intra-op threads (if torch is loaded: stages without models never import it)."""
    n = cpu_threads(configured)
    torch = imported("torch")  # another shard thread may be importing it right now
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
