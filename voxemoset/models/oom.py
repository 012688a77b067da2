"""Out of GPU memory in a batched model call: run the call again from its start at half the batch size.

A model object (F5Synthesizer, Emotion2vecScorer, WhisperTranscriber, TransformersCaptioner) holds a
`batch_size` and routes each batched call through `run_halving`. The call is handed the size, runs every batch
at it, and on an out-of-memory error is run again *from its start* at half the size that failed: its result is
then exactly that of a call made at the smaller size, never a mix of batches of two sizes. The halved size is
kept on the model, so later calls (later shards of this worker, other threads sharing the model) do not run out
of memory at the failed size again; a size that failed is never tried again. At batch size 1 the error goes on
to the caller (a shard task then retries the shard: flows/transient.py).

Not accelerate's `find_executable_batch_size`: it keeps the size in a closure rather than on the model, turns
the error at size 1 into a RuntimeError of its own (no longer torch's OutOfMemoryError, so no longer a
transient error for the shard task) and collects garbage before every call. Its `should_reduce_batch_size`
(which errors count) and `clear_device_cache` (for whatever device torch has) are used as they are.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

from voxemoset.store.imported import imported

log = logging.getLogger(__name__)
T = TypeVar("T")
_lock = threading.Lock()  # shard tasks in threads share a model: lower its batch size one at a time


class Batched(Protocol):
    """A model with a batch size it may lower."""

    batch_size: int


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's CUDA out-of-memory error, or another that accelerate would answer with a smaller batch."""
    torch = imported("torch")  # never import torch for this; wait if another shard thread is importing it
    if torch is None or not isinstance(exc, RuntimeError):
        return False  # no torch loaded: no model of ours ran out of memory (and accelerate would import it)
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    from accelerate.utils.memory import should_reduce_batch_size

    return should_reduce_batch_size(exc)


def free_device_memory() -> None:
    """Collect garbage (the failed batch's tensors) and give the device's cached blocks back."""
    from accelerate.utils.memory import clear_device_cache

    clear_device_cache(garbage_collection=True)


def run_halving(model: Batched, call: Callable[[int], T], name: str) -> T:
    """`call(model.batch_size)`; after an out-of-memory error, again from its start at half the failed size."""
    while True:
        size = model.batch_size
        try:
            return call(size)
        except Exception as exc:
            if size <= 1 or not is_out_of_memory(exc):
                raise
            reason = str(exc).split("\n")[0][:200]
        # Out of the except block: the error's traceback (its frames hold the failed batch's tensors) is gone.
        free_device_memory()
        with _lock:
            model.batch_size = min(model.batch_size, size // 2)
        log.warning("%s: out of memory at batch size %d (%s); running again at %d, kept for later calls",
                    name, size, reason, model.batch_size)  # fmt: skip
