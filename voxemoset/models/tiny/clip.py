"""Tiny random CLIP (text + vision towers) with a locally built tokenizer, for the report's CLIPScore offline."""

from __future__ import annotations

from pathlib import Path

IMAGE_SIZE = 32
PATCH_SIZE = 8
EMBED_DIM = 16


def clip_vocab() -> dict[str, int]:
    """A byte-level CLIP vocabulary without merges: every byte symbol, alone or word-final (`</w>`), plus specials.

    CLIP's tokenizer lowercases, splits words and maps bytes to symbols; with these entries every word encodes
    (one token per byte), so no merges are needed.
    """
    from voxemoset.models.tiny._bpe import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    return vocab


def _share_a_direction(model) -> None:
    """Give both towers' pooled outputs one common bias and one projection.

    A random CLIP's image-caption cosines fall on both sides of 0 and CLIPScore clamps the negative ones to 0,
    so a demo would report a bare 0; with a shared component they are mostly positive (as a real CLIP's, about
    0.3) and still differ from pair to pair.
    """
    import torch

    with torch.no_grad():
        bias = torch.randn(model.text_model.final_layer_norm.bias.shape)
        bias *= bias.numel() ** 0.5 / bias.norm()  # as long as the normalised activations (norm sqrt(n))
        model.text_model.final_layer_norm.bias.copy_(bias)
        model.vision_model.post_layernorm.bias.copy_(bias)
        model.visual_projection.weight.copy_(model.text_projection.weight)


def write_clip(out_dir: Path, seed: int = 0) -> Path:
    """Write a tiny random CLIPModel + CLIPProcessor (32 px images, 16-d embeddings) to `out_dir`; return it."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = CLIPTokenizer(vocab=clip_vocab(), merges=[])
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": 77,  # as the real model: longer captions are truncated
        "projection_dim": EMBED_DIM,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision = {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": IMAGE_SIZE,
        "patch_size": PATCH_SIZE,
        "projection_dim": EMBED_DIM,
    }
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=EMBED_DIM)).eval()
    _share_a_direction(model)
    model.save_pretrained(out_dir)
    images = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(out_dir)
    return out_dir
