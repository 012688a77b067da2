"""The prompts a test set contributes: a seeded random sample of its rows (the same seed, the same sample)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from voxemoset.emotions import EMOTIONS
from voxemoset.train.eval.config import TestSet


def sample_indices(n_rows: int, size: int | None, seed: int) -> list[int]:
    """`size` distinct row numbers drawn with `seed` (sorted); all rows when size is None or not smaller."""
    if size is None or size >= n_rows:
        return list(range(n_rows))
    return sorted(np.random.default_rng(seed).choice(n_rows, size=size, replace=False).tolist())


def emotion_name(value) -> str | None:
    """A row's emotion as a name (the published column is a class index); None for emotion-free corpora."""
    if value is None:
        return None
    return EMOTIONS[value] if isinstance(value, int) else str(value)


@dataclass
class EvalSample:
    """A test set's sampled rows, read lazily from the memory-mapped shards."""

    test_set: TestSet
    rows: object  # datasets.Dataset in arrow format
    indices: list[int]

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def ids(self) -> list[str]:
        return self.rows.select(self.indices)["id"].to_pylist()

    def batches(self, size: int, columns: tuple[str, ...]) -> Iterator[list[dict]]:
        """The sampled rows, `size` at a time, with only `columns` read."""
        table = self.rows.select_columns(list(columns))
        for start in range(0, len(self.indices), size):
            yield table.select(self.indices[start : start + size])[:].to_pylist()

    def real_images(self, resolution: int, batch_size: int = 64) -> Iterator[torch.Tensor]:
        """uint8 batches (n, 3, R, R) of the sampled rows' images, each image once (captions may share one)."""
        from voxemoset.train.data import decode_image

        seen: set[str] = set()
        for batch in self.batches(batch_size, ("image_id", "image")):
            fresh = [row for row in batch if row["image_id"] not in seen]
            seen.update(row["image_id"] for row in fresh)
            if fresh:
                pixels = torch.stack([decode_image(row["image"]["bytes"], resolution) for row in fresh])
                yield ((pixels + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def load_sample(test_set: TestSet, cache: Path) -> EvalSample:
    """Draw the test set's sample and record its ids in `<cache>/<name>-sample.json`."""
    from voxemoset.train.data import load_rows

    rows = load_rows(test_set.path, test_set.split, cache / "arrow").with_format("arrow")
    sample = EvalSample(test_set, rows, sample_indices(rows.num_rows, test_set.size, test_set.seed))
    record = {"test_set": test_set.name, "rows": rows.num_rows, "seed": test_set.seed, "ids": sample.ids}
    cache.mkdir(parents=True, exist_ok=True)
    (cache / f"{test_set.name}-sample.json").write_text(json.dumps(record))
    return sample
