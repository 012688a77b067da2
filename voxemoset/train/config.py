"""Configs of `voxemoset train` and `voxemoset evaluate` (pydantic; unknown keys are errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, model_validator

from voxemoset.config import Strict, read_yaml, validate

SD15_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
WHISPER_ID = "openai/whisper-large-v3"
CLIP_ID = "openai/clip-vit-large-patch14"


class EncoderConfig(Strict):
    """The frozen speech encoder and where its frame embeddings live."""

    kind: Literal["whisper", "sonar"] = Field("whisper", description="whisper: in-process; sonar: own env, precomputed")
    model: str = Field(WHISPER_ID, description="whisper: local dir or HF id (offline); sonar: checkpoint file")
    precomputed: bool = Field(True, description="read frame embeddings from `embeddings`; false: encode in the loop")
    embeddings: Path | None = Field(None, description="embedding shards; default <dataset>/../embeddings/<kind>")
    batch_size: int = Field(8, ge=1, description="clips per encoder batch (encode step, on-the-fly encoding)")
    dtype: Literal["float32", "float16", "bfloat16"] = Field("float16", description="encoder weights on a GPU")

    @model_validator(mode="after")
    def _sonar_is_precomputed(self) -> EncoderConfig:
        if self.kind == "sonar" and not self.precomputed:
            raise ValueError("the SONAR encoder runs in its own environment: set encoder.precomputed to true")
        return self


class SIBConfig(Strict):
    """The SIB: one (Transformer -> strided conv) stage per stride; the strides multiply to the pooling ratio."""

    strides: tuple[int, ...] = Field((2, 2, 2), min_length=1, description="e.g. [2, 2, 2] or [8]: ratio 8")
    layers_per_stage: int = Field(1, ge=1, description="Transformer layers before each strided conv")
    heads: int = Field(8, ge=1)
    width: int | None = Field(None, ge=8, description="inside width; None: the speech encoder's frame width")
    ffn_mult: int = Field(4, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)


class TrainConfig(Strict):
    """One training run: data, models, what is trained, the optimiser and checkpointing."""

    dataset: Path = Field(description="published dataset folder (holds data/<split>-*.parquet)")
    split: str = "train"
    output_dir: Path = Field(Path("runs/train"), description="checkpoint-<step>/ folders and log.jsonl")
    cache_dir: Path | None = Field(
        None, description="Arrow copy of the rows and cached latents; default <output_dir>/cache"
    )
    pretrained: str = Field(SD15_ID, description="SD-1.5 layout folder (unet/, vae/, scheduler/) or HF id, offline")
    encoder: EncoderConfig = EncoderConfig()
    sib: SIBConfig = SIBConfig()
    mode: Literal["frozen", "lora", "full"] = Field("frozen", description="frozen: SIB only; lora; full UNet")
    lora_rank: int = Field(4, ge=1)
    lora_alpha: int | None = Field(None, ge=1, description="None: equal to lora_rank")
    lr: float = Field(1e-6, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = Field(1e-8, gt=0)
    lr_warmup_steps: int = Field(0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0, description="None: no clipping")
    batch_size: int = Field(16, ge=1, description="per device and micro-batch")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimiser step")
    max_steps: int = Field(10_000, ge=1, description="optimiser steps")
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    gradient_checkpointing: bool = False
    cond_dropout: float = Field(0.1, ge=0, le=1, description="share of samples trained on the null tokens (CFG)")
    seed: int = 0
    resolution: int = Field(512, ge=8, description="square image side in pixels")
    cache_latents: bool = Field(True, description="encode every image with the VAE once and reuse its moments")
    checkpoint_every: int = Field(500, ge=1, description="optimiser steps between checkpoints")
    keep_last: int | None = Field(3, ge=1, description="checkpoints kept; None keeps all")
    log_every: int = Field(10, ge=1)
    num_workers: int = Field(2, ge=0, description="DataLoader worker processes")
    limit: int | None = Field(None, ge=1, description="use only the first N rows (trials)")

    @property
    def cache(self) -> Path:
        """Where the row copy and latent cache live."""
        return self.cache_dir or self.output_dir / "cache"


class EvalConfig(Strict):
    """`voxemoset evaluate`: generate from test speech with a checkpoint, then FID, CLIPScore and Emo-A."""

    checkpoint: Path = Field(description="a checkpoint-<step> folder written by `voxemoset train`")
    dataset: Path
    split: str = "test"
    limit: int | None = Field(None, ge=1, description="evaluate the first N rows only")
    output_dir: Path = Field(Path("runs/eval"), description="generated PNGs and metrics.json")
    encoder_model: str | None = Field(None, description="override the checkpoint's speech encoder location")
    embeddings: Path | None = Field(None, description="precomputed embeddings of `split` (needed for SONAR)")
    metrics: tuple[Literal["fid", "clip_score", "emo_a"], ...] = ("fid", "clip_score", "emo_a")
    inception_weights: Path = Field(
        Path("weights/weights-inception-2015-12-05-6726825d.pth"), description="torch-fidelity's FID Inception"
    )
    clip_model: str = Field(CLIP_ID, description="local dir or HF id (offline)")
    emotion_classifier: Path = Field(
        Path("weights/emoset-classifier"), description="transformers image classifier over the emotions"
    )
    guidance_scale: float = Field(7.5, ge=0)
    steps: int = Field(50, ge=1)
    seed: int = 0
    batch_size: int = Field(8, ge=1)
    resolution: int | None = Field(None, ge=8, description="None: the checkpoint's training resolution")
    device: str | None = Field(None, description="None: cuda when available")


C = TypeVar("C", TrainConfig, EvalConfig)


def load_yaml(path: Path | str, cls: type[C]) -> C:
    """Read and validate a YAML config; every mistake becomes one UserError line."""
    return validate(cls, read_yaml(path), origin=str(path))
