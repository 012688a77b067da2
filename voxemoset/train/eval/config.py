"""`voxemoset evaluate`'s config: the paper's protocol (test sets, systems, metric models), unknown keys rejected."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from voxemoset.config import Strict
from voxemoset.models.clip_score import DEFAULT_CLIP as CLIP_ID
from voxemoset.train.config import SD15_ID

ASR_ID = "openai/whisper-large-v3"
DEFAULT_SAMPLE = 10_000  # the paper: 10k random prompts of SpokenCOCO and VoxEmoset; Flickr8kAudio's 5k test all
SYSTEM_LABELS = {
    "speech": "Speech → image (ours)",
    "text_zero_shot": "SD-1.5 zero-shot (text)",
    "text_finetuned": "SD-1.5 fine-tuned (text)",
    "cascade": "Whisper → SD-1.5 (cascade)",
    "real": "Real test images (reference)",
}
Metric = Literal["fid", "clip_score", "emo_a"]


class TestSet(Strict):
    """One test set: its published-layout folder, and how many of its prompts are sampled (seeded)."""

    __test__ = False  # not a pytest class

    name: str = Field(description="the table's column group, e.g. VoxEmoset")
    kind: Literal["voxemoset", "spokencoco", "flickr8k"]
    path: Path = Field(description="published-layout folder (data/<split>-*.parquet)")
    split: str = "test"
    sample: int | Literal["all"] | None = Field(
        None, description="prompts drawn at random; None: 10000 (flickr8k: all 5k); all: every row"
    )
    seed: int = Field(0, description="the sample's seed: the same seed draws the same prompts")
    embeddings: Path | None = Field(None, description="precomputed frames of this split (SONAR checkpoints)")

    @property
    def size(self) -> int | None:
        """Rows to sample; None: all of them."""
        if self.sample == "all" or (self.sample is None and self.kind == "flickr8k"):
            return None
        return DEFAULT_SAMPLE if self.sample is None else int(self.sample)


class System(Strict):
    """One row of the table: the speech model, or a baseline."""

    kind: Literal["speech", "text_zero_shot", "text_finetuned", "cascade", "real"]
    name: str | None = Field(None, description="the row's label; None: a default per kind")
    checkpoint: Path | None = Field(None, description="speech / text_finetuned: a `voxemoset train` checkpoint")

    @model_validator(mode="after")
    def _checkpoint_when_trained(self) -> System:
        trained = self.kind in ("speech", "text_finetuned")
        if trained != (self.checkpoint is not None):
            need = "needs a `checkpoint`" if trained else "takes no checkpoint"
            raise ValueError(f"system {self.kind} {need}")
        return self

    @property
    def label(self) -> str:
        return self.name or SYSTEM_LABELS[self.kind]


class EvalModels(Strict):
    """Where every model lives (local folders or cached HF ids; nothing is downloaded at run time)."""

    sd: str = Field("weights/sd-1.5", description=f"{SD15_ID} folder: zero-shot and cascade baselines")
    asr: str = Field("weights/whisper-large-v3", description=f"the cascade's Whisper ({ASR_ID})")
    speech_encoder: str | None = Field(None, description="override a speech checkpoint's encoder location")
    clip: str = Field("weights/clip-vit-large-patch14", description=f"CLIPScore's CLIP ({CLIP_ID})")
    inception: Path = Field(
        Path("weights/weights-inception-2015-12-05-6726825d.pth"), description="torch-fidelity's FID Inception-v3"
    )
    emotion_classifier: Path = Field(
        Path("weights/emoset-classifier"), description="transformers image classifier over EmoSet's emotions"
    )


class EvalConfig(Strict):
    """`voxemoset evaluate`: every system draws every test set's sampled prompts; one table (the paper's Tab. 2)."""

    output_dir: Path = Field(Path("runs/eval"), description="table.md, table.json, images/<system>/<set>/")
    test_sets: list[TestSet] = Field(min_length=1)
    systems: list[System] = Field(min_length=1)
    models: EvalModels = EvalModels()
    metrics: tuple[Metric, ...] = ("fid", "clip_score", "emo_a")
    guidance_scale: float = Field(7.5, ge=0)
    steps: int = Field(50, ge=1, description="DDIM steps")
    seed: int = Field(0, description="image noise: image i of every system starts from the same noise")
    batch_size: int = Field(8, ge=1, description="prompts per text-to-image batch; Whisper clips per batch")
    resolution: int = Field(512, ge=8, description="generated and real images (square, centre crop)")
    device: str | None = Field(None, description="None: cuda when available")

    @model_validator(mode="after")
    def _distinct_names(self) -> EvalConfig:
        for what, names in (
            ("test set", [t.name for t in self.test_sets]),
            ("system", [s.label for s in self.systems]),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"{what} names must differ: {names}")
        return self
