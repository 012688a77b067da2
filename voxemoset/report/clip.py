"""Image-caption CLIPScore of every published row, with a local CLIP; absent weights become a recorded reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from voxemoset.config import ReportConfig
from voxemoset.errors import UserError, describe
from voxemoset.hub.shards import list_dataset_shards


def clip_info(settings: ReportConfig) -> dict:
    """What report.json says about the CLIP it used (a Hub id, or a local folder's name)."""
    from voxemoset.models.resolve import model_label

    return {"model": model_label(settings.clip_model)}


def score_rows(out: Path, settings: ReportConfig) -> tuple[pd.Series | None, dict]:
    """(id -> CLIPScore of the row's image and caption, info) of the build's dataset; see `score_folder`."""
    return score_folder(Path(out) / "dataset" / "data", settings)


def score_folder(data_dir: Path, settings: ReportConfig) -> tuple[pd.Series | None, dict]:
    """(id -> CLIPScore of each row's image and caption in a published-layout `data/` folder, info); (None, info
    with `error`) when CLIP cannot load.

    Each image is embedded once however many captions it has; one row group's image bytes are read at a time.
    """
    from voxemoset.models.clip_score import ClipScorer

    info = clip_info(settings)
    try:
        scorer = ClipScorer(settings.clip_model, settings.clip_device, settings.clip_batch_size)
    except UserError as e:
        return None, {**info, "status": "missing", "error": describe(e)}
    scores: dict[str, float] = {}
    for paths in list_dataset_shards(data_dir).values():
        for path in paths:
            scores.update(_score_shard(path, scorer))
    return pd.Series(scores, dtype=float), {**info, "status": "ok", "pairs": len(scores)}


def _score_shard(path: Path, scorer) -> dict[str, float]:
    from voxemoset.models.clip_score import clip_scores

    scores: dict[str, float] = {}
    shard = pq.ParquetFile(path)
    embedded: dict[str, np.ndarray] = {}  # the previous row group's images: rows are in image order
    for group in range(shard.num_row_groups):
        rows = shard.read_row_group(group, columns=["id", "image_id", "caption", "image"]).to_pylist()
        new = {r["image_id"]: r["image"]["bytes"] for r in rows if r["image_id"] not in embedded}
        vectors = scorer.embed_images(list(new.values()))
        embedded = {**{k: embedded[k] for k in {r["image_id"] for r in rows} - set(new)},
                    **dict(zip(new, vectors, strict=True))}  # fmt: skip
        texts = scorer.embed_texts([r["caption"] for r in rows])
        images = np.stack([embedded[r["image_id"]] for r in rows]) if rows else texts
        scores.update(zip((r["id"] for r in rows), clip_scores(images, texts).tolist(), strict=True))
    return scores
