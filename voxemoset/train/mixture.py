"""Training on a weighted mixture of datasets (the paper: SpokenCOCO + VoxEmoset).

Every sample of every batch picks its dataset by weight, then each dataset's samples of the global batch (all
ranks' samples together) take distinct rows of it, uniformly; rows repeat within a batch only when a dataset has
fewer rows than were drawn from it, and across batches as with replacement. The generator is seeded by (run seed,
batch number): a resumed run sees exactly the batches a straight run would, and every rank draws the same global
batch and keeps its own share, so no two ranks train on one row in the same step. Rows without an emotion train
the same loss.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.data import Dataset, Sampler

from voxemoset.errors import UserError
from voxemoset.seeds import derive_seed
from voxemoset.train.config import DatasetSource, EncoderConfig


def source_encoder(encoder: EncoderConfig, source: DatasetSource, mixture: bool) -> EncoderConfig:
    """The encoder settings of one dataset: in a mixture an explicit `embeddings` folder gets a subfolder each
    (their shard names would collide)."""
    if mixture and encoder.embeddings is not None:
        return encoder.model_copy(update={"embeddings": Path(encoder.embeddings) / source.label})
    return encoder


class MixtureDataset(Dataset):
    """Several datasets end to end; each item also names its dataset (`source`)."""

    def __init__(self, parts: Sequence[Dataset], names: Sequence[str]):
        self.parts, self.names = list(parts), list(names)
        self.sizes = [len(p) for p in self.parts]
        self.offsets = [sum(self.sizes[:k]) for k in range(len(self.sizes))]

    def __len__(self) -> int:
        return sum(self.sizes)

    def __getitem__(self, index: int) -> dict:
        k = bisect.bisect_right(self.offsets, int(index)) - 1
        return {**self.parts[k][int(index) - self.offsets[k]], "source": self.names[k]}


def distinct_rows(size: int, m: int, g: torch.Generator) -> torch.Tensor:
    """`m` rows of `range(size)` in random order, all distinct when `m <= size`, else each row as often as the
    others give or take one. Floyd's algorithm: O(m) work, where a randperm of a 600k-row corpus costs 20 ms a batch.
    """
    if m > size:  # whole permutations back to back: repeats are unavoidable, keep them even
        return torch.cat([torch.randperm(size, generator=g) for _ in range(-(-m // size))])[:m]
    tops = torch.arange(size - m, size, dtype=torch.float64) + 1
    picks = (torch.rand(m, generator=g, dtype=torch.float64) * tops).long().tolist()
    chosen: list[int] = []
    taken: set[int] = set()
    for j, pick in zip(range(size - m, size), picks, strict=True):
        row = j if pick in taken else pick  # pick is uniform over 0..j; j itself is still free
        taken.add(row)
        chosen.append(row)
    return torch.tensor(chosen)[torch.randperm(m, generator=g)]  # Floyd's tends to put high rows last: shuffle


def mixture_weights(sizes: Sequence[int], weights: Sequence[float | str]) -> list[float]:
    """Sampling weights: the configured numbers, or every dataset's row count when all say `proportional` (so a
    sample is as likely to come from a dataset as its rows are, as when the datasets are pooled)."""
    if all(w == "proportional" for w in weights):
        return [float(n) for n in sizes]
    return [float(w) for w in weights]


class WeightedBatches(Sampler[list[int]]):
    """Batches of a MixtureDataset drawn by weight; `set_position(epoch, skip)` as EpochBatches (an "epoch" here
    is only a count of batches, as many as the rows fill)."""

    def __init__(
        self, sizes: Sequence[int], weights: Sequence[float], batch_size: int, seed: int, rank: int = 0, world: int = 1
    ):
        if len(sizes) != len(weights) or not sizes:
            raise ValueError("one weight per dataset")
        if min(sizes) < 1:
            raise UserError(f"a mixture dataset has no rows (sizes {list(sizes)})")
        self.sizes = torch.tensor(list(sizes))
        self.offsets = torch.cumsum(self.sizes, 0) - self.sizes
        self.probs = torch.tensor(list(weights), dtype=torch.float64) / sum(weights)
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world
        self.per_epoch = max(1, int(self.sizes.sum()) // (batch_size * world))
        self.epoch, self.skip = 0, 0

    def set_position(self, epoch: int, skip: int) -> None:
        """Next iteration yields from batch `epoch * per_epoch + skip` on."""
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.per_epoch - self.skip

    def global_batch(self, number: int) -> tuple[list[int], list[int]]:
        """(row indices, dataset of each) of global batch `number` (all ranks' samples)."""
        g = torch.Generator().manual_seed(derive_seed("mixture", self.seed, number))
        n = self.batch_size * self.world
        which = torch.multinomial(self.probs, n, replacement=True, generator=g)
        rows = torch.zeros(n, dtype=torch.long)
        for k in range(len(self.sizes)):  # in dataset order, so the draw is a function of (seed, number) alone
            slots = (which == k).nonzero().squeeze(1)
            if len(slots):
                rows[slots] = distinct_rows(int(self.sizes[k]), len(slots), g)
        return (self.offsets[which] + rows).tolist(), which.tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for b in range(self.skip, self.per_epoch):
            indices, _ = self.global_batch(self.epoch * self.per_epoch + b)
            yield indices[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]


def encode_sources(
    cfg, split: str | None = None, device: str | None = None, progress: bool = False, guard=nullcontext
) -> list[Path]:
    """Every dataset's frame-embedding folder for `split` (default: each dataset's training split), encoding what
    is missing; one folder per dataset. SONAR embeddings missing from several datasets are named together, in one
    command line, rather than one dataset per attempt. `guard()` wraps each encoding (training: main process
    first)."""
    from voxemoset.train.encode import SONAR_SETUP, MissingEmbeddingsError, encode_split

    folders, missing = [], []
    for src in cfg.sources:
        encoder = source_encoder(cfg.encoder, src, cfg.datasets is not None)
        try:
            with guard():
                folders.append(encode_split(src.path, split or src.split, encoder, device, progress, cfg.limit))
        except MissingEmbeddingsError as e:
            missing.append((src.label, e))
    if len(missing) == 1:
        raise missing[0][1]
    if missing:
        names = ", ".join(label for label, _ in missing)
        commands = " && ".join(e.command for _, e in missing)
        raise UserError(
            f"SONAR embeddings are missing for {len(missing)} datasets ({names}); "
            f"write them with: {SONAR_SETUP} && {commands}"
        )
    return folders
