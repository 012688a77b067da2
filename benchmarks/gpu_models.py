"""Models and inputs of benchmarks/gpu.py: the real architectures (or the tiny ones) at random weights, built in memory.

Real sizes: F5TTS_v1_Base (f5_tts/configs/F5TTS_v1_Base.yaml) + Vocos mel 24 kHz (charactr/vocos-mel-24khz's
config); LLaVA-OneVision-qwen2-7b (llava-hf's config: SigLIP so400m-patch14-384 with 26 layers, as the checkpoint
keeps them, + Qwen2-7B); the training step's SD-1.5 UNet and SIB come from bench_train.build. Tiny sizes are the
test models' (voxemoset.models.tiny). Weights are initialised on the target device, so an 8B model takes seconds.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np
import torch

from voxemoset.audio import TTS_RATE  # gpu_sections reads it as gm.TTS_RATE

# llava-hf/llava-onevision-qwen2-7b-ov-hf: vision tower and language model.
LLAVA_7B = {
    "image_size": 384,
    "patch_size": 14,
    "grid": 6,  # anyres pinpoints 384..2304 px a side
    "vision": {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 26, "num_attention_heads": 16},
    "text": {
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
    },
}
# The tiny test model's sizes (voxemoset.models.tiny.llava_onevision), with a vocabulary wider than its tokenizer,
# as the real one: sampled ids the tokenizer does not know must decode without error.
LLAVA_TINY = {
    "image_size": 32,
    "patch_size": 8,
    "grid": 3,
    "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
    "text": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "vocab_size": 1024,
        "max_position_embeddings": 4096,
    },
}
REF_TEXT = "Don't forget a jacket, it will be cold tonight."
CAPTION_WORDS = "a small red boat rests on a calm lake near tall green pine trees under a grey evening sky".split()


def n_params(module: torch.nn.Module) -> float:
    """Parameters in millions."""
    return round(sum(p.numel() for p in module.parameters()) / 1e6, 1)


def f5_arch(tiny: bool) -> dict:
    """The DiT's arch dict: F5TTS_v1_Base's yaml, or the tiny test checkpoint's."""
    import yaml

    from voxemoset.models.tiny.f5tts import ARCH

    if tiny:
        return dict(ARCH)
    spec = Path(str(files("f5_tts").joinpath("configs/F5TTS_v1_Base.yaml")))
    return yaml.safe_load(spec.read_text())["model"]["arch"]


def build_f5(tiny: bool, device: torch.device, dtype: torch.dtype):
    """(CFM with the DiT, Vocos) at random weights on `device`, built as f5_tts's load_model builds them.

    F5 zero-initialises its output projections (adaLN-zero); they are filled with small noise so the DiT works.
    """
    from f5_tts.model import CFM, DiT
    from f5_tts.model.utils import get_tokenizer

    from voxemoset.models.tiny.f5tts import MEL_SPEC, VOCOS_CONFIG, vocos_config
    from voxemoset.models.vocos import build_vocos

    vocab_map, vocab_size = get_tokenizer(str(files("f5_tts").joinpath("infer/examples/vocab.txt")), "custom")
    torch.manual_seed(0)
    with device:
        dit = DiT(**f5_arch(tiny), text_num_embeds=vocab_size, mel_dim=MEL_SPEC["n_mel_channels"])
        model = CFM(dit, mel_spec_kwargs=dict(MEL_SPEC), vocab_char_map=vocab_map)
        with torch.no_grad():
            for p in model.parameters():
                if not p.any():
                    p.normal_(0, 0.02)
        vocoder = build_vocos(VOCOS_CONFIG if tiny else vocos_config(512, 1536, 8), Path("<in memory>"))  # charactr's
    return model.to(dtype).eval(), vocoder.eval()


def reference(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced-sounding 24 kHz reference: a gliding harmonic tone with noise, RMS 0.1 (no espeak-ng needed)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * TTS_RATE)) / TTS_RATE
    f0 = 120 + 20 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / TTS_RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 6)) + 0.05 * rng.standard_normal(t.size)
    return (x * 0.1 / np.sqrt(np.mean(x**2))).astype(np.float32)


def caption_for(seconds: float, ref_s: float) -> str:
    """A caption F5's duration rule speaks in about `seconds` after a `ref_s` reference read as REF_TEXT."""
    ref_bytes = len(REF_TEXT.encode()) + 2  # f5_reference appends ". " style spacing
    want = round(seconds / (ref_s + 0.05) * ref_bytes)
    words, text = iter(CAPTION_WORDS * 4), ""
    while len(text) + 1 < want:
        text = f"{text} {next(words)}".strip()
    return text[:1].upper() + text[1:] + "."


def build_llava(tiny: bool, device: torch.device, dtype: torch.dtype):
    """(processor, model): LLaVA-OneVision at random weights on `device`, the test tokenizer and chat template."""
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    from voxemoset.models.tiny.llava_onevision import CHAT_TEMPLATE, build_tokenizer

    sizes = LLAVA_TINY if tiny else LLAVA_7B
    tok = build_tokenizer()
    side = sizes["image_size"]
    pinpoints = [[side * i, side * j] for i in range(1, sizes["grid"] + 1) for j in range(1, sizes["grid"] + 1)]
    vision = {**sizes["vision"], "model_type": "siglip_vision_model", "image_size": side,
              "patch_size": sizes["patch_size"], "vision_use_head": False}  # fmt: skip
    text = {**sizes["text"], "model_type": "qwen2", "tie_word_embeddings": False,
            "bos_token_id": tok.convert_tokens_to_ids("<|endoftext|>"), "eos_token_id": tok.eos_token_id}  # fmt: skip
    config = LlavaOnevisionConfig(
        vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"), vision_feature_select_strategy="full",
        vision_feature_layer=-1, vision_aspect_ratio="anyres_max_9", image_grid_pinpoints=pinpoints,
        projector_hidden_act="gelu", tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    with device:
        model = LlavaOnevisionForConditionalGeneration._from_config(config, dtype=dtype).eval()
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = text["bos_token_id"], tok.eos_token_id, tok.pad_token_id
    size = {"height": side, "width": side}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=pinpoints, image_mean=[0.5] * 3,
                                                     image_std=[0.5] * 3, do_pad=True),
        tokenizer=tok,
        video_processor=LlavaOnevisionVideoProcessor(size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3),
        num_image_tokens=(side // sizes["patch_size"]) ** 2, vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9", chat_template=CHAT_TEMPLATE,
    )  # fmt: skip
    return processor, model


def photo(seed: int, width: int = 500, height: int = 375):
    """A 500 x 375 RGB test picture (an EmoSet-like size): smooth colour fields plus noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    base = np.stack([np.sin(6 * xx + seed), np.cos(5 * yy - seed), np.sin(4 * (xx + yy))], -1)
    pixels = 127 + 100 * base + 20 * rng.standard_normal((height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
