"""The LLaVA-OneVision checkpoint the model backends load: its default id, role name, and where it is found."""

from __future__ import annotations

from pathlib import Path

from voxemoset.models.resolve import resolve_checkpoint

DEFAULT_MODEL = "llava-hf/llava-onevision-qwen2-7b-ov-hf"
MODEL_ROLE = "captions model (LLaVA-OneVision)"
MODEL_TYPE = "llava_onevision"  # config.json's model_type: a folder of any other model is refused


def resolve_model(model: str) -> Path:
    """A checkpoint folder: the local dir as given, or the HF-cache snapshot of a Hub id, never downloading."""
    return resolve_checkpoint(model, MODEL_ROLE, DEFAULT_MODEL)
