"""Pick and build the configured captioner (`captions.backend`) from the adapters in voxemoset.models.captioners."""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxemoset.models.captioners.llava import resolve_model
from voxemoset.models.resolve import model_label

if TYPE_CHECKING:
    from voxemoset.config import CaptionsConfig
    from voxemoset.models.protocols import Captioner


def load_captioner(cfg: CaptionsConfig, prompt: str) -> Captioner:
    """Build the configured backend once; heavy libraries are imported here, not at module import."""
    label = model_label(cfg.model)
    if cfg.backend == "table":
        from voxemoset.models.captioners.answer_table import TableCaptioner

        return TableCaptioner.load(cfg.table)
    if cfg.backend == "openai":
        from voxemoset.models.captioners.openai_chat import OpenAICaptioner

        return OpenAICaptioner.from_config(cfg, prompt, label)
    model_dir = resolve_model(cfg.model)
    if cfg.backend == "vllm":
        from voxemoset.models.captioners.llava_vllm import VllmCaptioner

        return VllmCaptioner.load(model_dir, prompt, cfg, label)
    from voxemoset.models.captioners.llava_transformers import TransformersCaptioner

    return TransformersCaptioner.load(model_dir, prompt, cfg, label)
