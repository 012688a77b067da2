"""The `Captioner` interface, where prompts, lexicon and checkpoints are found, and the backend factory."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from voxemoset.errors import UserError
from voxemoset.models.resolve import model_label, resolve_checkpoint
from voxemoset.resources import manifests_dir, prompts_dir

if TYPE_CHECKING:
    from PIL import Image

    from voxemoset.config import CaptionsConfig

DEFAULT_MODEL = "llava-hf/llava-onevision-qwen2-7b-ov-hf"
MODEL_ROLE = "captions model (LLaVA-OneVision)"
MODEL_TYPE = "llava_onevision"  # config.json's model_type: a folder of any other model is refused


class CaptionBackendError(UserError):
    """A captioning backend failed in a way retrying this image will not fix (server down, bad request)."""


class Captioner(Protocol):
    """Captions images: one raw model answer (text that should hold the JSON) per image and seed.

    `ids` are the images' ids; model backends ignore them, the `table` backend looks answers up by them.
    """

    name: str

    def caption(self, images: list[Image.Image], seeds: list[int], ids: list[str] | None = None) -> list[str]: ...


def default_prompt() -> Path:
    """The versioned captioning prompt, `prompts/caption.txt`."""
    return prompts_dir() / "caption.txt"


def default_lexicon() -> Path:
    """The emotion word list, `manifests/emotion_lexicon.txt`."""
    return manifests_dir() / "emotion_lexicon.txt"


def prompt_path(cfg: CaptionsConfig) -> Path:
    """The prompt file in use."""
    return Path(cfg.prompt) if cfg.prompt else default_prompt()


def lexicon_path(cfg: CaptionsConfig) -> Path:
    """The emotion lexicon in use."""
    return Path(cfg.lexicon) if cfg.lexicon else default_lexicon()


def read_text(path: Path, key: str) -> str:
    """A required text file, or one clear error naming the config key."""
    if not path.is_file():
        raise UserError(f"{key}: file not found: {path}")
    return path.read_text()


def sha256_text(text: str) -> str:
    """sha256 of a text, so editing the prompt or lexicon re-keys the stage."""
    return hashlib.sha256(text.encode()).hexdigest()


def resolve_model(model: str) -> Path:
    """A checkpoint folder: the local dir as given, or the HF-cache snapshot of a Hub id, never downloading."""
    return resolve_checkpoint(model, MODEL_ROLE, DEFAULT_MODEL)


def load_captioner(cfg: CaptionsConfig, prompt: str) -> Captioner:
    """Build the configured backend once; heavy libraries are imported here, not at module import."""
    label = model_label(cfg.model)
    if cfg.backend == "table":
        from voxemoset.captions.table_backend import TableCaptioner

        return TableCaptioner.load(cfg.table)
    if cfg.backend == "openai":
        from voxemoset.captions.openai_backend import OpenAICaptioner

        return OpenAICaptioner.from_config(cfg, prompt, label)
    model_dir = resolve_model(cfg.model)
    if cfg.backend == "vllm":
        from voxemoset.captions.vllm_backend import VllmCaptioner

        return VllmCaptioner.load(model_dir, prompt, cfg, label)
    from voxemoset.captions.transformers_backend import TransformersCaptioner

    return TransformersCaptioner.load(model_dir, prompt, cfg, label)
