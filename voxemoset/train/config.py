"""Configs of `voxemoset train` and `voxemoset evaluate` (pydantic; unknown keys are errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import Field, model_validator

from voxemoset.config import Strict, read_yaml, speed_only, validate

SD15_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
WHISPER_ID = "openai/whisper-large-v3"


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


class DatasetSource(Strict):
    """One dataset of a mixture: a published-layout folder and its share of the training samples."""

    path: Path = Field(description="published-layout folder (data/<split>-*.parquet): VoxEmoset or a corpus")
    weight: Annotated[float, Field(gt=0)] | Literal["proportional"] = Field(
        1.0,
        description="relative sampling weight (normalised over the mixture); proportional: by rows, as the paper "
        "pools its datasets (then every dataset of the mixture says proportional)",
    )
    split: str | None = Field(None, description="None: the run's `split`")
    name: str | None = Field(None, description="None: the folder's name; names must differ")

    @property
    def label(self) -> str:
        return self.name or self.path.name


class TrainConfig(Strict):
    """One training run: data, models, what is trained, the optimiser and checkpointing."""

    dataset: Path | None = Field(None, description="one published dataset folder (holds data/<split>-*.parquet)")
    datasets: list[DatasetSource] | None = Field(
        None, min_length=1, description="a mixture instead of `dataset`: each batch sample drawn by weight"
    )
    split: str = "train"
    conditioning: Literal["speech", "text"] = Field(
        "speech", description="speech: SIB over speech frames; text: SD-1.5's CLIP text encoder (the text baseline)"
    )
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
    trace_rows: bool = speed_only(
        False, description="each rank appends its rows of every micro-batch to <output_dir>/rows-<rank>.jsonl"
    )  # changes no weight or loss: marked like the speed-only settings, so nothing keys on it

    @model_validator(mode="after")
    def _one_data_source(self) -> TrainConfig:
        if (self.dataset is None) == (self.datasets is None):
            raise ValueError("give either `dataset` (one folder) or `datasets` (a weighted mixture), not both")
        labels = [s.label for s in self.sources]
        if len(set(labels)) != len(labels):
            raise ValueError(f"mixture datasets need distinct names (got {labels}): set `name` on each")
        if len({s.weight == "proportional" for s in self.sources}) > 1:
            raise ValueError("weight: proportional on some datasets and numbers on others; give one kind for all")
        if self.conditioning == "text" and self.mode == "frozen":
            raise ValueError("conditioning text trains the UNet: set mode to lora or full")
        return self

    @property
    def sources(self) -> list[DatasetSource]:
        """The datasets trained on, as a mixture (a single `dataset` is a mixture of one)."""
        if self.datasets is not None:
            return [s.model_copy(update={"split": s.split or self.split}) for s in self.datasets]
        return [DatasetSource(path=self.dataset, split=self.split)]

    @property
    def cache(self) -> Path:
        """Where the row copy and latent cache live."""
        return self.cache_dir or self.output_dir / "cache"


C = TypeVar("C", bound=Strict)


def load_yaml(path: Path | str, cls: type[C]) -> C:
    """Read and validate a YAML config; every mistake becomes one UserError line."""
    return validate(cls, read_yaml(path), origin=str(path))
