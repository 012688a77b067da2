"""FID, CLIPScore and Emo-A with local weights only; each model is located before anything is generated."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from voxemoset.corpora.emoset import EMOSET_TO_EMOTION
from voxemoset.emotions import EMOTIONS
from voxemoset.errors import MissingWeightsError, UserError
from voxemoset.models.clip_score import DEFAULT_CLIP as CLIP_ID
from voxemoset.models.clip_score import ROLE as CLIP_ROLE
from voxemoset.models.resolve import resolve_checkpoint
from voxemoset.train.eval.config import EvalConfig

INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)
# Predicted emotions of a batch of PIL images, folded into the five (amusement and excitement -> enjoyment).
EmotionClassifier = Callable[[list], list[str | None]]


@dataclass
class MetricModels:
    """What scores the images: FID's feature net, CLIPScore's CLIP folder, Emo-A's classifier (None: not used)."""

    fid_features: nn.Module | Path | None = None
    clip: Path | None = None
    classifier: EmotionClassifier | None = None


def _inception(path: Path) -> Path:
    if not path.is_file():
        command = f"mkdir -p {path.parent} && curl -L -o {path} {INCEPTION_URL}"
        raise MissingWeightsError("FID Inception-v3 (torch-fidelity's port of the TF weights)", str(path), command)
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        raise UserError("FID needs torch-fidelity: pip install torch-fidelity") from None
    return path


def _classifier_dir(path: Path) -> Path:
    if not (path / "config.json").is_file():
        # No EmoSet classifier is published in transformers' format; the user brings (or fine-tunes) one.
        command = f"hf download <your EmoSet image-emotion classifier repo> --local-dir {path}"
        raise MissingWeightsError(
            "image emotion classifier for Emo-A (AutoModelForImageClassification, id2label = EmoSet's 8 "
            "or the 5 VoxEmoset emotions)",
            str(path),
            command,
        )
    return path


def check_weights(cfg: EvalConfig, given: MetricModels | None = None, device="cpu") -> MetricModels:
    """Every configured metric's model, located (or taken from `given`); a missing one names its download."""
    given = given or MetricModels()
    found = MetricModels()
    if "fid" in cfg.metrics:
        found.fid_features = given.fid_features or _inception(Path(cfg.models.inception))
    if "clip_score" in cfg.metrics:
        found.clip = given.clip or resolve_checkpoint(cfg.models.clip, CLIP_ROLE, CLIP_ID)
    emotional = any(t.kind == "voxemoset" for t in cfg.test_sets)
    if "emo_a" in cfg.metrics and emotional:
        found.classifier = given.classifier or ImageEmotionClassifier(
            _classifier_dir(Path(cfg.models.emotion_classifier)), device
        )
    return found


class _ClipFeatures(nn.Module):
    """CLIPModel whose feature getters return tensors (transformers 5 returns output objects; torchmetrics wants
    tensors)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.config = model.config

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.get_image_features(pixel_values=pixel_values).pooler_output

    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask).pooler_output


def clip_score_metric(clip_dir: Path):
    """torchmetrics CLIPScore with a local CLIP (update with uint8 images and their texts)."""
    from torchmetrics.multimodal.clip_score import CLIPScore
    from transformers import CLIPModel, CLIPProcessor

    from voxemoset.models.safe_load import check_hf_folder

    check_hf_folder(clip_dir, "clip", "CLIPScore model")
    model = CLIPModel.from_pretrained(clip_dir, trust_remote_code=False).eval()
    processor = CLIPProcessor.from_pretrained(clip_dir, trust_remote_code=False)
    return CLIPScore(model_name_or_path=lambda: (_ClipFeatures(model), processor))


def clip_score(images: torch.Tensor, captions: list[str], clip_dir: Path) -> float:
    """CLIPScore of uint8 images (B, 3, H, W) against their texts."""
    metric = clip_score_metric(clip_dir)
    metric.update(images, captions)
    return float(metric.compute())


def fid_metric(feature: Path | nn.Module):
    """torchmetrics FID that keeps its real-image statistics across `reset()`; `feature` is
    the Inception weights file or any feature net with `num_features`."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if isinstance(feature, nn.Module):
        metric = FrechetInceptionDistance(feature=feature, reset_real_features=False)
    else:
        metric = FrechetInceptionDistance(
            feature=2048, feature_extractor_weights_path=str(feature), reset_real_features=False
        )
    return metric  # its feature sums and covariances are float64 already


def fid(real: torch.Tensor, fake: torch.Tensor, feature: Path | nn.Module, batch_size: int = 64) -> float:
    """FID between two uint8 image sets (N, 3, H, W)."""
    if len(real) < 2 or len(fake) < 2:
        raise UserError("FID needs at least 2 real and 2 generated images")
    metric = fid_metric(feature)
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, len(images), batch_size):
            metric.update(images[start : start + batch_size], real=is_real)
    return float(metric.compute())


def fold_emotion(label: str) -> str | None:
    """A classifier label as one of the five emotions (EmoSet's amusement and excitement are enjoyment)."""
    label = label.lower()
    return label if label in EMOTIONS else EMOSET_TO_EMOTION.get(label)


class ImageEmotionClassifier:
    """A local transformers image classifier; labels outside the five (awe, contentment) never win."""

    def __init__(self, classifier_dir: Path, device="cpu", batch_size: int = 32):
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        # Any image classifier architecture may serve, but only built-in model code is ever run.
        self.processor = AutoImageProcessor.from_pretrained(classifier_dir, trust_remote_code=False)
        model = AutoModelForImageClassification.from_pretrained(classifier_dir, trust_remote_code=False)
        self.model, self.device = model.eval().to(device), device
        self.names = [fold_emotion(self.model.config.id2label[i]) for i in range(self.model.config.num_labels)]
        if not any(self.names):
            labels = list(self.model.config.id2label.values())
            raise UserError(f"{classifier_dir}: its labels {labels} name no emotion")
        self.keep = torch.tensor([n is not None for n in self.names])
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, images: list) -> list[str | None]:
        out: list[str | None] = []
        for start in range(0, len(images), self.batch_size):
            chunk = [im.convert("RGB") for im in images[start : start + self.batch_size]]
            inputs = self.processor(images=chunk, return_tensors="pt").to(self.device)
            logits = self.model(**inputs).logits.cpu()
            out += [self.names[p] for p in logits.masked_fill(~self.keep, float("-inf")).argmax(-1).tolist()]
        return out


def emotion_accuracy(images: list, targets: Sequence[str], classifier: EmotionClassifier) -> float:
    """Emo-A: the share of images whose predicted emotion (folded into five) is the intended one."""
    if len(images) != len(targets) or not targets:
        raise UserError("Emo-A needs one intended emotion per image")
    predicted = classifier(images)
    hits = [fold_emotion(p or "") == fold_emotion(t) for p, t in zip(predicted, targets, strict=True)]
    return float(np.mean(hits))
