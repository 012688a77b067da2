"""Training rows from the published shards: images as tensors (or cached latents), speech as frames (or audio)."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from voxemoset.audio import OUT_RATE, decode_at_rate
from voxemoset.errors import UserError
from voxemoset.train.encoders import TensorStore


def dataset_files(dataset: Path, split: str) -> list[Path]:
    """The split's Parquet shards: `<dataset>/data/<split>-*.parquet` (or directly under `dataset`)."""
    dataset = Path(dataset)
    if not dataset.is_dir():
        raise UserError(f"dataset folder not found: {dataset}")
    for folder in (dataset / "data", dataset):
        files = sorted(folder.glob(f"{split}-*.parquet"))
        if files:
            return files
    raise UserError(f"{dataset}: no {split}-*.parquet shards under data/ (build them with the `dataset` stage)")


def load_rows(dataset: Path, split: str, cache_dir: Path, limit: int | None = None):
    """The split as a memory-mapped `datasets.Dataset` (an Arrow copy under cache_dir), first `limit` rows."""
    import datasets

    files = [str(f) for f in dataset_files(dataset, split)]
    rows = datasets.load_dataset("parquet", data_files={split: files}, split=split, cache_dir=str(cache_dir))
    missing = {"id", "image", "image_id", "audio"} - set(rows.column_names)
    if missing:
        raise UserError(f"{dataset}: the {split} shards lack columns {sorted(missing)}")
    return rows.select(range(min(limit, len(rows)))) if limit else rows


def decode_image(data: bytes, resolution: int) -> torch.Tensor:
    """Image bytes -> (3, R, R) float in [-1, 1]: shorter side resized to R, centre crop (as diffusers' scripts)."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as img:
        img = ImageOps.fit(img.convert("RGB"), (resolution, resolution), Image.Resampling.BICUBIC)
        arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class SpeechImageDataset(Dataset):
    """Row i -> {id, image_id, caption, emotion} + frames (or raw audio) + latent moments (or pixels)."""

    def __init__(
        self,
        rows,
        resolution: int,
        embeddings: TensorStore | None = None,
        latents: TensorStore | None = None,
        speech: bool = True,
    ):
        # Only the columns this run reads (the bytes of the other modality stay on disk), as raw Arrow structs:
        # no PIL or audio decoding by `datasets`.
        columns = [c for c in ("id", "image_id", "caption", "emotion") if c in rows.column_names]
        columns += (["audio"] if speech and embeddings is None else []) + (["image"] if latents is None else [])
        self.rows = rows.select_columns(columns).with_format("arrow")
        self.resolution = resolution
        self.embeddings, self.latents, self.speech = embeddings, latents, speech

    def __len__(self) -> int:
        return self.rows.num_rows

    def __getitem__(self, index: int) -> dict:
        row = self.rows[int(index)].to_pylist()[0]
        item = {
            "id": row["id"],
            "image_id": row["image_id"],
            "caption": row.get("caption"),
            "emotion": row.get("emotion"),
        }
        if self.embeddings is not None:
            item["frames"] = self.embeddings.get(row["id"])
        elif self.speech:  # text conditioning reads no speech
            item["audio"] = decode_at_rate(row["audio"]["bytes"], OUT_RATE)
        if self.latents is not None:
            item["moments"] = self.latents.get(row["image_id"])
        else:
            item["pixel_values"] = decode_image(row["image"]["bytes"], self.resolution)
        return item


def collate(items: list[dict]) -> dict:
    """Stack a batch; frames are right-padded to the longest with a boolean mask (True = valid)."""
    keys = ("id", "image_id", "caption", "emotion", "source")  # source: the mixture's dataset name
    batch: dict = {k: [it[k] for it in items] for k in keys if k in items[0]}
    if "frames" in items[0]:
        lengths = torch.tensor([it["frames"].shape[0] for it in items])
        frames = torch.nn.utils.rnn.pad_sequence([it["frames"] for it in items], batch_first=True)
        batch["frames"] = frames
        batch["frame_mask"] = torch.arange(frames.shape[1])[None, :] < lengths[:, None]
    elif "audio" in items[0]:
        batch["audio"] = [it["audio"] for it in items]
    for key in ("moments", "pixel_values"):
        if key in items[0]:
            batch[key] = torch.stack([it[key] for it in items])
    return batch


class EpochBatches(Sampler[list[int]]):
    """Deterministic batches: epoch e is a permutation seeded by (seed, e), cut into this rank's share of batches.

    `set_position(epoch, skip)` starts mid-epoch, so a resumed run sees exactly the batches a straight run would.
    """

    def __init__(self, n_rows: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.n_rows, self.batch_size, self.seed, self.rank, self.world = n_rows, batch_size, seed, rank, world
        self.per_epoch = n_rows // (batch_size * world)  # every rank gets the same count (DDP needs it)
        if self.per_epoch == 0:
            raise UserError(f"{n_rows} training rows are fewer than batch_size {batch_size} x {world} processes")
        self.epoch, self.skip = 0, 0

    def set_position(self, epoch: int, skip: int) -> None:
        """Next iteration yields epoch `epoch` from its batch `skip` on."""
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.per_epoch - self.skip

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n_rows, generator=g).tolist()
        step = self.batch_size * self.world
        for b in range(self.skip, self.per_epoch):
            chunk = order[b * step : (b + 1) * step]
            yield chunk[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]


def unique_images(rows) -> tuple[list[str], list[int]]:
    """Each image_id once, with the first row that holds it (several captions share one image)."""
    seen: dict[str, int] = {}
    for i, image_id in enumerate(rows["image_id"]):
        seen.setdefault(image_id, i)
    return list(seen), list(seen.values())


def image_batches(rows, indices: Sequence[int], resolution: int, batch_size: int) -> Iterator[torch.Tensor]:
    """Pixel tensors of the given rows, `batch_size` at a time (for caching latents)."""
    table = rows.with_format("arrow")
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        pics = [table[int(i)].column("image")[0]["bytes"].as_py() for i in chunk]
        yield torch.stack([decode_image(p, resolution) for p in pics])
