"""The text baselines' conditioning: SD-1.5's own frozen CLIP text encoder in place of speech + SIB.

`conditioning: text` trains the UNet (lora or full) on the rows' transcripts with the same loop, data and steps
as the speech model; `voxemoset evaluate` also samples SD-1.5 zero-shot from the transcripts.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from voxemoset.errors import MissingWeightsError
from voxemoset.train.config import SD15_ID
from voxemoset.train.model import SpeechToImage


def load_text_encoder(pretrained: Path) -> tuple[nn.Module, object]:
    """(CLIPTextModel, CLIPTokenizer) from an SD-1.5-layout folder's text_encoder/ and tokenizer/."""
    from transformers import CLIPTextModel, CLIPTokenizer

    pretrained = Path(pretrained)
    if not (pretrained / "text_encoder" / "config.json").is_file():
        command = f"hf download {SD15_ID} --local-dir {pretrained}"
        raise MissingWeightsError("Stable Diffusion 1.5 text encoder", str(pretrained / "text_encoder"), command)
    encoder = CLIPTextModel.from_pretrained(pretrained, subfolder="text_encoder")
    tokenizer = CLIPTokenizer.from_pretrained(pretrained, subfolder="tokenizer")
    return encoder.requires_grad_(False).eval(), tokenizer


class TextToImage(SpeechToImage):
    """The same diffusion loss, conditioned on the transcript through the frozen text encoder; the CFG null
    condition is the empty prompt, as SD-1.5 was trained."""

    def __init__(self, text_encoder: nn.Module, tokenizer, unet: nn.Module, vae: nn.Module, scheduler, dropout: float):
        super().__init__(None, unet, vae, scheduler, dropout)
        self.text_encoder, self.tokenizer = text_encoder, tokenizer

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """CLIP hidden states (B, 77, D) of the prompts, padded to the tokenizer's length as SD does."""
        ids = self.tokenizer(
            texts,
            padding="max_length",
            max_length=min(self.tokenizer.model_max_length, self.text_encoder.config.max_position_embeddings),
            truncation=True,
            return_tensors="pt",
        ).input_ids
        device = next(self.text_encoder.parameters()).device
        return self.text_encoder(ids.to(device))[0].float()

    def condition_batch(self, batch: dict, drop: torch.Tensor) -> tuple[torch.Tensor, None]:
        texts = ["" if d else (c or "") for c, d in zip(batch["caption"], drop.tolist(), strict=True)]
        return self.encode_text(texts), None
