"""The table's systems, one interface: rows of a test set -> images. Image i of every system starts from the same
noise (seeded by the run seed and the row id), so the systems differ only in their conditioning."""

from __future__ import annotations

from pathlib import Path

import torch

from voxemoset.errors import UserError
from voxemoset.seeds import derive_seed
from voxemoset.train.eval.config import EvalConfig, System


def image_seed(seed: int, row_id: str) -> int:
    """The noise seed of one prompt's image (shared by all systems)."""
    return derive_seed("evaluate", seed, row_id)


def eval_device(cfg: EvalConfig) -> torch.device:
    return torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))


class SpeechSystem:
    """A trained speech checkpoint: speech (or its precomputed frames) -> SIB tokens -> image."""

    columns = ("id", "audio")
    uses_frames = True  # a test set's precomputed `embeddings` replace the audio

    def __init__(self, checkpoint: Path, cfg: EvalConfig):
        from voxemoset.train.generate import SpeechToImagePipeline

        self.pipe = SpeechToImagePipeline(checkpoint, cfg.device, cfg.models.speech_encoder)
        self.cfg = cfg

    def __call__(self, rows: list[dict], store=None) -> list:
        from voxemoset.audio import OUT_RATE, decode_at_rate

        if store is not None:
            frames = [store.get(row["id"]) for row in rows]
        else:
            frames = [self.pipe.frames(decode_at_rate(row["audio"]["bytes"], OUT_RATE)) for row in rows]
        seeds = [image_seed(self.cfg.seed, row["id"]) for row in rows]
        return self.pipe.batch(frames, seeds, self.cfg.guidance_scale, self.cfg.steps, self.cfg.resolution)


class TextSystem:
    """SD-1.5 from text: as published (zero-shot), or with a `conditioning: text` checkpoint's UNet."""

    columns = ("id", "caption")

    def __init__(self, cfg: EvalConfig, checkpoint: Path | None = None):
        from voxemoset.train.generate import sd_pipeline
        from voxemoset.train.model import load_diffusion
        from voxemoset.train.text import load_text_encoder

        pretrained, mode = cfg.models.sd, None
        if checkpoint is not None:
            train_cfg = _text_checkpoint(Path(checkpoint))
            pretrained, mode = train_cfg.pretrained, train_cfg.mode
        sd = load_diffusion(pretrained)
        text_encoder, tokenizer = load_text_encoder(sd.path)
        self.pipe = sd_pipeline(sd, checkpoint, mode, text_encoder, tokenizer)
        self.device = eval_device(cfg)
        self.pipe.to(self.device, dtype=torch.float16 if self.device.type == "cuda" else torch.float32)
        self.cfg = cfg

    @torch.no_grad()
    def draw(self, prompts: list[str], ids: list[str]) -> list:
        """One image per prompt, in one batch."""
        generators = [torch.Generator(self.device).manual_seed(image_seed(self.cfg.seed, i)) for i in ids]
        return self.pipe(
            prompt=prompts,
            negative_prompt=[""] * len(prompts),
            guidance_scale=self.cfg.guidance_scale,
            num_inference_steps=self.cfg.steps,
            generator=generators,
            height=self.cfg.resolution,
            width=self.cfg.resolution,
        ).images

    def __call__(self, rows: list[dict], store=None) -> list:
        return self.draw([row.get("caption") or "" for row in rows], [row["id"] for row in rows])


class CascadeSystem:
    """Whisper transcribes the speech; SD-1.5 (zero-shot) draws the transcript."""

    columns = ("id", "audio")

    def __init__(self, cfg: EvalConfig):
        from voxemoset.models.whisper_asr import WhisperTranscriber

        device = eval_device(cfg)
        dtype = "float16" if device.type == "cuda" else "float32"
        self.asr = WhisperTranscriber(cfg.models.asr, str(device), dtype, batch_size=cfg.batch_size)
        self.text = TextSystem(cfg)
        self.transcripts: dict[str, str] = {}

    def __call__(self, rows: list[dict], store=None) -> list:
        from voxemoset.audio import OUT_RATE, decode_at_rate

        texts = self.asr.transcribe([decode_at_rate(row["audio"]["bytes"], OUT_RATE) for row in rows])
        self.transcripts.update((row["id"], t) for row, t in zip(rows, texts, strict=True))
        return self.text.draw(texts, [row["id"] for row in rows])


def _text_checkpoint(checkpoint: Path):
    from voxemoset.train.config import TrainConfig

    if not (checkpoint / "train_config.json").is_file():
        raise UserError(f"{checkpoint}: not a training checkpoint (no train_config.json)")
    train_cfg = TrainConfig.model_validate_json((checkpoint / "train_config.json").read_text())
    if train_cfg.conditioning != "text":
        raise UserError(f"{checkpoint}: a speech checkpoint; system text_finetuned needs a `conditioning: text` run")
    return train_cfg


class RealImages:
    """The test images themselves, as the other systems' images are scored: a reference row (FID ≈ 0, the
    CLIPScore and Emo-A of real pictures)."""

    columns = ("id", "image")

    def __init__(self, cfg: EvalConfig):
        self.resolution = cfg.resolution

    def __call__(self, rows: list[dict], store=None) -> list:
        from PIL import Image

        from voxemoset.train.data import decode_image

        images = []
        for row in rows:
            pixels = ((decode_image(row["image"]["bytes"], self.resolution) + 1) * 127.5).round().clamp(0, 255)
            images.append(Image.fromarray(pixels.to(torch.uint8).permute(1, 2, 0).numpy()))
        return images


def check_systems(cfg: EvalConfig) -> None:
    """Every system's checkpoint and weights located before anything is generated (a missing one names its
    download)."""
    from voxemoset.models.resolve import resolve_checkpoint
    from voxemoset.models.whisper_asr import DEFAULT_WHISPER
    from voxemoset.train.config import SD15_ID

    kinds = {s.kind for s in cfg.systems}
    if kinds & {"text_zero_shot", "cascade"}:
        role = "Stable Diffusion 1.5 (text baselines)"
        resolve_checkpoint(cfg.models.sd, role, SD15_ID, marker="text_encoder/config.json")
    if "cascade" in kinds:
        resolve_checkpoint(cfg.models.asr, "Whisper (the cascade's transcripts)", DEFAULT_WHISPER)
    for system in cfg.systems:
        if system.checkpoint is not None and not (Path(system.checkpoint) / "train_config.json").is_file():
            raise UserError(f"system {system.label}: {system.checkpoint} is not a training checkpoint")
        if system.kind == "text_finetuned":
            _text_checkpoint(Path(system.checkpoint))
    from voxemoset.train.eval.preflight import check_speech_inputs

    check_speech_inputs(cfg)


def build_system(system: System, cfg: EvalConfig):
    """The generator of one table row."""
    if system.kind == "real":
        return RealImages(cfg)
    if system.kind == "speech":
        return SpeechSystem(system.checkpoint, cfg)
    if system.kind == "cascade":
        return CascadeSystem(cfg)
    return TextSystem(cfg, system.checkpoint)
