"""Captioning with transformers `generate`: the CPU fallback, and GPU machines without vLLM."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import LogitsProcessor

from voxemoset.models.devices import pick_device
from voxemoset.models.oom import run_halving

if TYPE_CHECKING:
    from PIL import Image

    from voxemoset.config import CaptionsConfig


class SeededSampler(LogitsProcessor):
    """Samples each batch row with its own seeded generator (temperature, then nucleus), as a one-hot logit.

    `generate` draws from one global RNG, so a batch cannot give each item its own seed. This processor does
    the drawing itself and leaves a single finite logit per row, which greedy decoding then picks. Row i's
    tokens thus depend only on seeds[i] and its own logits: the same seed gives the same answer whatever
    else is in the batch, up to the float noise that padding may add to the logits.
    """

    def __init__(self, seeds: list[int], temperature: float, top_p: float, device: torch.device):
        self.temperature, self.top_p = temperature, top_p
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.temperature <= 0:
            return scores  # greedy: nothing to draw
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p < 1:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            # Drop tokens once the mass before them already reaches top_p; the top token always stays.
            drop = (sorted_p.cumsum(-1) - sorted_p) >= self.top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        picked = torch.cat([torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(len(picked), device=scores.device), picked] = 0.0
        return out


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto` means bf16 on GPU, fp32 on CPU (CPU bf16 matmuls are slow on most hosts)."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


class TransformersCaptioner:
    """LLaVA-OneVision through transformers: batched `generate`, left padding, per-item seeded sampling."""

    def __init__(self, processor, model, prompt: str, name: str, max_new_tokens: int, temperature: float, top_p: float,
                 batch_size: int = 16):  # fmt: skip
        self.processor, self.model, self.name, self.batch_size = processor, model, name, batch_size
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        # Decoder-only batches must be left-padded so every row's answer starts at the same position.
        self.processor.tokenizer.padding_side = "left"
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        # The checkpoint's own chat template renders the prompt; never a hand-built string.
        self.text = processor.apply_chat_template(messages, add_generation_prompt=True)

    @classmethod
    def load(cls, model_dir: Path, prompt: str, cfg: CaptionsConfig, name: str) -> TransformersCaptioner:
        """Load processor and model from a local folder, offline."""
        from transformers import AutoProcessor, LlavaOnevisionForConditionalGeneration

        from voxemoset.models.captioners.llava import DEFAULT_MODEL, MODEL_ROLE, MODEL_TYPE
        from voxemoset.models.resolve import redownload_command
        from voxemoset.models.safe_load import load_pretrained

        device = pick_device(cfg.device)
        download = redownload_command(model_dir, DEFAULT_MODEL)
        model = load_pretrained(LlavaOnevisionForConditionalGeneration, model_dir, MODEL_TYPE, MODEL_ROLE, download,
                                dtype=pick_dtype(cfg.dtype, device))  # fmt: skip
        # trust_remote_code=False: the Auto class then never imports code the folder names.
        processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
        model = model.to(device).eval()
        return cls(processor, model, prompt, name, cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.batch_size)

    def caption(self, images: list[Image.Image], seeds: list[int], ids: list[str] | None = None) -> list[str]:
        """One raw answer per image, one `generate` call per `batch_size` images.

        Out of memory, the whole call runs again at half the batch size, which the captioner keeps (models/oom.py).
        """
        if not images:
            return []
        return run_halving(self, lambda size: self._caption_batches(images, seeds, size), "LLaVA-OneVision")

    def _caption_batches(self, images: list[Image.Image], seeds: list[int], batch_size: int) -> list[str]:
        answers: list[str] = []
        for k in range(0, len(images), batch_size):
            answers += self._generate(images[k : k + batch_size], seeds[k : k + batch_size])
        return answers

    @torch.inference_mode()
    def _generate(self, images: list[Image.Image], seeds: list[int]) -> list[str]:
        from transformers import GenerationConfig, LogitsProcessorList

        device = self.model.device
        inputs = self.processor(images=images, text=[self.text] * len(images), return_tensors="pt", padding=True)
        inputs = inputs.to(device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        base = self.model.generation_config
        gen = GenerationConfig(
            do_sample=False,  # SeededSampler draws; greedy then takes its single finite logit
            max_new_tokens=self.max_new_tokens,
            eos_token_id=base.eos_token_id,
            pad_token_id=base.pad_token_id if base.pad_token_id is not None else self.processor.tokenizer.pad_token_id,
        )
        sampler = SeededSampler(seeds, self.temperature, self.top_p, device)
        out = self.model.generate(**inputs, generation_config=gen, logits_processor=LogitsProcessorList([sampler]))
        answers = out[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(answers, skip_special_tokens=True)
