"""The references a retry may speak with: every reference's metadata in memory, its audio read when a retry picks it.

At paper scale the references stage holds ~40k clips (~2 GB of FLAC): holding all of them in each gates process
would cost that much per process, whereas a round of retries needs a few hundred. Each round's clips are read
shard by shard (each shard once), and the most recent ones stay in a bounded cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq

META_COLUMNS = ["reference_id", "corpus", "speaker", "split", "emotion", "transcript"]
CACHED_CLIPS = 512  # ~50-100 MB of FLAC: a round's worth, reused by the next round's retries of the same refs


class ReferencePool:
    """The references stage's rows without their audio (`rows`, by id, by (split, emotion)), and `audio(ids)` for
    the clips a round needs."""

    def __init__(self, shards: list[str], cached_clips: int = CACHED_CLIPS):
        self.shards = list(shards)  # the references shards' paths, as the runner handed them to the job
        self.rows: list[dict] = []
        self._shard_of: dict[str, Path] = {}
        for path in map(Path, self.shards):
            for row in pq.read_table(path, columns=META_COLUMNS).to_pylist():
                self.rows.append(row)
                self._shard_of[row["reference_id"]] = path
        self.by_id = {r["reference_id"]: r for r in self.rows}
        # Grouped once per process: a scan of every reference per retry is quadratic at scale.
        self.groups: dict[tuple[str, str], list[dict]] = {}
        for r in self.rows:
            self.groups.setdefault((r["split"], r["emotion"]), []).append(r)
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached_clips = cached_clips
        self._lock = threading.Lock()  # gates shard tasks in threads share one pool
        self.shard_reads = 0  # how many shard reads the audio took (the tests' and benchmarks' measure)

    def audio(self, ids: Iterable[str]) -> dict[str, bytes]:
        """The FLAC bytes of each reference in `ids`: cached ones as they are, the others read shard by shard."""
        wanted = dict.fromkeys(ids)
        with self._lock:
            got = {i: self._cache[i] for i in wanted if i in self._cache}
            by_shard: dict[Path, set[str]] = {}
            for i in wanted:
                if i not in got:
                    by_shard.setdefault(self._shard_of[i], set()).add(i)
            for path, needed in sorted(by_shard.items()):
                self.shard_reads += 1
                table = pq.read_table(path, columns=["reference_id", "audio"])
                clips = table.column("audio")
                for k, ref_id in enumerate(table.column("reference_id").to_pylist()):
                    if ref_id in needed:
                        got[ref_id] = clips[k]["bytes"].as_py()
            for i in wanted:  # the round's clips, most recent last; the oldest fall out
                self._cache[i] = got[i]
                self._cache.move_to_end(i)
            while len(self._cache) > self._cached_clips:
                self._cache.popitem(last=False)
        return {i: got[i] for i in wanted}
