"""The references the speech stage reads: their assignment fields at planning, their audio when speaking."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np
import pyarrow.parquet as pq

from voxemoset.audio import TTS_RATE, decode_at_rate
from voxemoset.store.upstream import Shard

REFERENCE_KEYS = ["reference_id", "corpus", "speaker", "split", "emotion", "intensity", "transcript"]


def read_references(shards: list[Shard]) -> list[dict]:
    """Every reference's assignment fields, where it lives (shard, row) and a hash of its audio and transcript."""
    refs = []
    for shard in shards:
        row = 0
        for batch in pq.ParquetFile(shard.path).iter_batches(batch_size=256, columns=[*REFERENCE_KEYS, "audio"]):
            for r in batch.to_pylist():
                h = hashlib.sha256(r.pop("audio")["bytes"])
                h.update(b"\x1f" + (r["transcript"] or "").encode())
                refs.append({**r, "content": h.hexdigest(), "shard": str(shard.path), "shard_name": shard.name,
                             "row": row})  # fmt: skip
                row += 1
    return refs


def load_reference_audio(refs: dict[str, dict]) -> dict[str, np.ndarray | str]:
    """reference_id -> float32 24 kHz samples (or why they could not be read), reading only the rows needed."""
    wanted: dict[str, dict[int, str]] = defaultdict(dict)
    for ref_id, info in refs.items():
        wanted[info["shard"]][info["row"]] = ref_id
    out: dict[str, np.ndarray | str] = {}
    for shard, rows in wanted.items():
        order = sorted(rows)
        table = pq.read_table(shard, columns=["reference_id", "audio"]).take(order)
        for row, ref_id, blob in zip(order, table["reference_id"].to_pylist(), table["audio"].to_pylist(), strict=True):
            if ref_id != rows[row]:
                out[rows[row]] = "references shard changed since planning"
                continue
            try:
                out[ref_id] = decode_at_rate(blob["bytes"], TTS_RATE)
            except Exception as e:  # noqa: BLE001 - a bad blob rejects its captions
                out[ref_id] = f"{type(e).__name__}: {e}"[:500]
    return out
