"""CLIPScore of image-caption pairs with a local CLIP (transformers), as torchmetrics defines it per pair.

CLIPScore(I, C) = 100 * max(cos(E_I, E_C), 0) (Hessel et al. 2021, w = 100 as in torchmetrics). torchmetrics'
own metric is not used: its feature getters break on transformers 5, and it clamps the mean rather than each
pair (the same for a real CLIP, whose image-caption cosines are positive).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from voxemoset.models.devices import device_name
from voxemoset.models.resolve import redownload_command, resolve_checkpoint
from voxemoset.models.safe_load import load_pretrained

DEFAULT_CLIP = "openai/clip-vit-large-patch14"
ROLE = "CLIP (CLIPScore)"


def decode_image(data: bytes):
    """RGB PIL image of encoded image bytes."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def clip_scores(image_embeds: np.ndarray, text_embeds: np.ndarray) -> np.ndarray:
    """Per-pair CLIPScore of L2-normalised embeddings (rows paired): 100 * max(cos, 0)."""
    return 100.0 * np.maximum((image_embeds * text_embeds).sum(axis=-1), 0.0)


class ClipScorer:
    """A local CLIPModel + CLIPProcessor embedding images and captions in batches (no download, built-in code)."""

    def __init__(self, model: str = DEFAULT_CLIP, device: str = "cpu", batch_size: int = 32):
        from transformers import CLIPModel, CLIPProcessor

        path = resolve_checkpoint(model, ROLE, DEFAULT_CLIP)
        self.model = load_pretrained(CLIPModel, path, "clip", ROLE, redownload_command(path, DEFAULT_CLIP))
        self.processor = CLIPProcessor.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        device = device_name(device)
        self.model.to(device).eval()
        self.device, self.batch_size = device, batch_size
        self.max_tokens = self.model.config.text_config.max_position_embeddings

    def embed_images(self, images: Sequence) -> np.ndarray:
        """L2-normalised embeddings (N, D) of PIL images or encoded image bytes."""
        import torch

        chunks = []
        for i in range(0, len(images), self.batch_size):
            batch = [decode_image(x) if isinstance(x, bytes) else x for x in images[i : i + self.batch_size]]
            pixels = self.processor.image_processor(images=batch, return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                out = self.model.get_image_features(pixel_values=pixels.to(self.device))
            chunks.append(_normalised(out))
        return np.concatenate(chunks) if chunks else np.zeros((0, self.model.config.projection_dim), np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised embeddings (N, D) of captions (cut to CLIP's 77 tokens, as torchmetrics does)."""
        import torch

        chunks = []
        for i in range(0, len(texts), self.batch_size):
            enc = self.processor.tokenizer(
                list(texts[i : i + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="pt",
            )
            with torch.inference_mode():
                out = self.model.get_text_features(**{k: v.to(self.device) for k, v in enc.items()})
            chunks.append(_normalised(out))
        return np.concatenate(chunks) if chunks else np.zeros((0, self.model.config.projection_dim), np.float32)

    def score(self, images: Sequence, texts: Sequence[str]) -> np.ndarray:
        """CLIPScore of each (image, caption) pair."""
        return clip_scores(self.embed_images(images), self.embed_texts(texts))


def _normalised(features) -> np.ndarray:
    """transformers 5 returns an output object (projected embedding in `pooler_output`), 4.x a tensor."""
    tensor = getattr(features, "pooler_output", features)
    x = tensor.float().cpu().numpy()
    return x / np.linalg.norm(x, axis=-1, keepdims=True)
