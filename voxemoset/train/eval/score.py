"""One test set's scorer: real-image FID statistics computed once, then FID, CLIPScore and Emo-A per system,
updated batch by batch (10k generated images never sit in memory together)."""

from __future__ import annotations

import numpy as np
import torch

from voxemoset.train.eval.metrics import MetricModels, clip_score_metric, fid_metric, fold_emotion
from voxemoset.train.eval.sample import EvalSample, emotion_name


def to_uint8(images: list) -> torch.Tensor:
    """PIL images -> uint8 (N, 3, H, W)."""
    return torch.stack(
        [torch.from_numpy(np.array(im.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1) for im in images]
    )


class SetScorer:
    """Scores every system's images of one test set against the same real images and texts."""

    def __init__(self, sample: EvalSample, models: MetricModels, resolution: int, clip=None, device="cpu"):
        self.sample, self.device = sample, torch.device(device)
        self.real_count = 0
        self.fid = None
        if models.fid_features is not None:
            self.fid = fid_metric(models.fid_features).to(self.device)
            for reals in sample.real_images(resolution):
                self.real_count += len(reals)
                self.fid.update(reals.to(self.device), real=True)
        self.clip = clip
        emotional = sample.test_set.kind == "voxemoset"
        self.classifier = models.classifier if emotional else None
        self.hits: list[bool] = []
        self.count = 0

    def start(self) -> None:
        """Forget the previous system's images (the real statistics stay)."""
        if self.fid is not None:
            self.fid.reset()
        if self.clip is not None:
            self.clip.reset()
        self.hits, self.count = [], 0

    def update(self, images: list, rows: list[dict]) -> None:
        """Add one batch of generated images and the rows (id, caption, emotion) they were drawn for."""
        u8 = to_uint8(images).to(self.device)
        self.count += len(images)
        if self.fid is not None:
            self.fid.update(u8, real=False)
        if self.clip is not None:
            self.clip.update(u8, [row.get("caption") or "" for row in rows])
        if self.classifier is not None:
            predicted = self.classifier(images)
            for p, row in zip(predicted, rows, strict=True):
                self.hits.append(fold_emotion(p or "") == emotion_name(row.get("emotion")))

    def result(self) -> dict[str, float | None]:
        """This system's FID, CLIPScore and Emo-A on the set (None where not measured)."""
        out: dict[str, float | None] = {"fid": None, "clip_score": None, "emo_a": None}
        if self.fid is not None:
            out["fid"] = max(0.0, float(self.fid.compute()))  # float round-off can dip a hair below 0
        if self.clip is not None:
            out["clip_score"] = float(self.clip.compute())
        if self.classifier is not None:
            out["emo_a"] = float(np.mean(self.hits))
        return out


def make_clip(models: MetricModels, device="cpu"):
    """One CLIPScore metric, loaded once, shared by the sets (reset per system and set)."""
    return clip_score_metric(models.clip).to(device) if models.clip is not None else None
