"""`voxemoset evaluate`: images generated from test speech, scored by FID, CLIPScore and Emo-A (all local weights)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from voxemoset.emotions import EMOTIONS
from voxemoset.errors import MissingWeightsError, UserError
from voxemoset.models.resolve import resolve_checkpoint
from voxemoset.sources.emoset import EMOSET_TO_EMOTION
from voxemoset.train.config import CLIP_ID, EvalConfig

INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)


def check_weights(cfg: EvalConfig) -> dict[str, Path]:
    """Every metric's weights, located before anything is generated; a missing one names its download."""
    found: dict[str, Path] = {}
    if "fid" in cfg.metrics:
        path = Path(cfg.inception_weights)
        if not path.is_file():
            command = f"mkdir -p {path.parent} && curl -L -o {path} {INCEPTION_URL}"
            raise MissingWeightsError("FID Inception-v3 (torch-fidelity's port of the TF weights)", str(path), command)
        try:
            import torch_fidelity  # noqa: F401
        except ImportError:
            raise UserError("FID needs torch-fidelity: pip install torch-fidelity") from None
        found["fid"] = path
    if "clip_score" in cfg.metrics:
        found["clip_score"] = resolve_checkpoint(cfg.clip_model, "CLIP (CLIPScore)", CLIP_ID)
    if "emo_a" in cfg.metrics:
        path = Path(cfg.emotion_classifier)
        if not (path / "config.json").is_file():
            # No EmoSet classifier is published in transformers' format; the user brings (or fine-tunes) one.
            command = f"hf download <your EmoSet image-emotion classifier repo> --local-dir {path}"
            raise MissingWeightsError(
                "image emotion classifier for Emo-A (AutoModelForImageClassification, id2label = EmoSet's 8 "
                "or the 5 VoxEmoset emotions)",
                str(path),
                command,
            )
        found["emo_a"] = path
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


def clip_score(images: torch.Tensor, captions: list[str], clip_dir: Path) -> float:
    """torchmetrics CLIPScore of uint8 images (B, 3, H, W) against their captions, with a local CLIP."""
    from torchmetrics.multimodal.clip_score import CLIPScore
    from transformers import CLIPModel, CLIPProcessor

    from voxemoset.models.safe_load import check_hf_folder

    check_hf_folder(clip_dir, "clip", "CLIPScore model")
    model = CLIPModel.from_pretrained(clip_dir, trust_remote_code=False).eval()
    processor = CLIPProcessor.from_pretrained(clip_dir, trust_remote_code=False)
    metric = CLIPScore(model_name_or_path=lambda: (_ClipFeatures(model), processor))
    metric.update(images, captions)
    return float(metric.compute())


def fid(real: torch.Tensor, fake: torch.Tensor, feature: Path | nn.Module) -> float:
    """torchmetrics FID between uint8 image batches; `feature` is the Inception weights file or any feature net."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise UserError("FID needs at least 2 real and 2 generated images")
    if isinstance(feature, nn.Module):
        metric = FrechetInceptionDistance(feature=feature)
    else:
        metric = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(feature))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def _to_emotion(label: str) -> str | None:
    label = label.lower()
    return label if label in EMOTIONS else EMOSET_TO_EMOTION.get(label)


def emotion_accuracy(images: list, targets: list[str], classifier_dir: Path) -> float:
    """Emo-A: share of images whose predicted emotion (EmoSet labels folded into five) is the intended one."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    # Any image classifier architecture may serve, but only built-in model code is ever run.
    processor = AutoImageProcessor.from_pretrained(classifier_dir, trust_remote_code=False)
    model = AutoModelForImageClassification.from_pretrained(classifier_dir, trust_remote_code=False).eval()
    names = [_to_emotion(model.config.id2label[i]) for i in range(model.config.num_labels)]
    if not any(names):
        raise UserError(f"{classifier_dir}: its labels {list(model.config.id2label.values())} name no emotion")
    keep = torch.tensor([n is not None for n in names])
    with torch.no_grad():
        logits = model(**processor(images=images, return_tensors="pt")).logits
    predicted = logits.masked_fill(~keep, float("-inf")).argmax(-1).tolist()  # awe/contentment cannot win
    return float(np.mean([names[p] == t for p, t in zip(predicted, targets, strict=True)]))


def _uint8(image) -> torch.Tensor:
    return torch.from_numpy(np.array(image.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1)


def evaluate(cfg: EvalConfig, progress: bool = False) -> dict:
    """Generate one image per test utterance, then compute the configured metrics; writes metrics.json."""
    from voxemoset.audio import OUT_RATE, decode_at_rate
    from voxemoset.train.data import decode_image, load_rows
    from voxemoset.train.encoders import TensorStore
    from voxemoset.train.generate import SpeechToImagePipeline

    weights = check_weights(cfg)
    pipe = SpeechToImagePipeline(cfg.checkpoint, cfg.device, cfg.encoder_model)
    size = cfg.resolution or pipe.cfg.resolution
    rows = load_rows(cfg.dataset, cfg.split, cfg.output_dir / "cache", cfg.limit).with_format("arrow")
    store = TensorStore(cfg.embeddings) if cfg.embeddings else None
    images_dir = cfg.output_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    fakes, captions, targets, reals = [], [], [], {}
    for i in range(rows.num_rows):
        row = rows[i].to_pylist()[0]
        frames = store.get(row["id"]) if store else pipe.frames(decode_at_rate(row["audio"]["bytes"], OUT_RATE))
        image = pipe(frames, cfg.guidance_scale, cfg.steps, cfg.seed, resolution=size)
        image.save(images_dir / f"{row['id']}.png")
        fakes.append(image)
        captions.append(row.get("caption") or "")
        emotion = row.get("emotion")
        targets.append(EMOTIONS[emotion] if isinstance(emotion, int) else str(emotion))
        if row["image_id"] not in reals:
            pixels = decode_image(row["image"]["bytes"], size)
            reals[row["image_id"]] = ((pixels + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        if progress:
            print(f"generated {i + 1}/{rows.num_rows}", file=sys.stderr)
    fake_u8 = torch.stack([_uint8(im) for im in fakes])
    metrics: dict[str, float | int] = {"images": len(fakes)}
    if "fid" in weights:
        metrics["fid"] = fid(torch.stack(list(reals.values())), fake_u8, weights["fid"])
    if "clip_score" in weights:
        metrics["clip_score"] = clip_score(fake_u8, captions, weights["clip_score"])
    if "emo_a" in weights:
        metrics["emo_a"] = emotion_accuracy([im.convert("RGB") for im in fakes], targets, weights["emo_a"])
    (cfg.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
