"""The Speech Information Bottleneck: frame embeddings (B, N, D) -> ceil(N / ratio) cross-attention tokens (B, M, D')."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from voxemoset.errors import UserError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass(frozen=True)
class SIBSpec:
    """Everything needed to rebuild a SIB: its widths and its (Transformer -> strided conv) stages."""

    in_dim: int  # speech encoder frame width (1280 for Whisper-large-v3, 1024 for SONAR)
    out_dim: int  # the UNet's cross-attention width (768 for SD-1.5)
    strides: tuple[int, ...] = (2, 2, 2)
    layers_per_stage: int = 1
    heads: int = 8
    width: int | None = None  # inside width; None keeps the encoder's
    ffn_mult: int = 4
    dropout: float = 0.0

    @property
    def ratio(self) -> int:
        """Total pooling ratio along time."""
        return math.prod(self.strides)

    def tokens(self, n_frames: int) -> int:
        """Output tokens for `n_frames` valid frames: ceil(N / s) per stage, i.e. ceil(N / ratio)."""
        for s in self.strides:
            n_frames = -(-n_frames // s)
        return n_frames


class SIBStage(nn.Module):
    """Transformer layer(s) over the valid frames, then a non-overlapping strided 1-D convolution along time."""

    def __init__(self, width: int, out_width: int, stride: int, spec: SIBSpec):
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            width,
            spec.heads,
            dim_feedforward=spec.ffn_mult * width,
            dropout=spec.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,  # pre-LN trains stably at the paper's tiny learning rate without warm-up tricks
        )
        # enable_nested_tensor would drop padded positions internally and return them as zeros; keep shapes plain.
        self.transformer = nn.TransformerEncoder(layer, spec.layers_per_stage, enable_nested_tensor=False)
        self.stride = stride
        # kernel == stride: output token j sees exactly input frames [j*s, (j+1)*s), so its mask is exact.
        self.conv = nn.Conv1d(width, out_width, kernel_size=stride, stride=stride)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, N, W), mask (B, N) True = valid -> (B, ceil(N/s), W'), its mask."""
        x = self.transformer(x, src_key_padding_mask=~mask)
        x = x * mask.unsqueeze(-1)  # padded frames must not leak into the token that straddles the end
        pad = (-x.shape[1]) % self.stride
        if pad:
            x = F.pad(x, (0, 0, 0, pad))
            mask = F.pad(mask, (0, pad), value=False)
        y = self.conv(x.transpose(1, 2)).transpose(1, 2)
        out_mask = mask.view(mask.shape[0], -1, self.stride).any(-1)
        return y * out_mask.unsqueeze(-1), out_mask


class SIB(nn.Module):
    """Speech frames -> UNet cross-attention tokens, plus the learned null tokens used for classifier-free guidance."""

    def __init__(self, spec: SIBSpec):
        super().__init__()
        width = spec.width or spec.in_dim
        if width % spec.heads:
            raise UserError(f"sib: width {width} is not divisible by heads {spec.heads}")
        if not spec.strides or any(s < 1 for s in spec.strides):
            raise UserError(f"sib: strides must be positive integers, got {spec.strides}")
        self.spec = spec
        self.proj_in = nn.Linear(spec.in_dim, width) if width != spec.in_dim else nn.Identity()
        self.stages = nn.ModuleList(SIBStage(width, width, s, spec) for s in spec.strides)
        self.norm = nn.LayerNorm(width)
        self.proj_out = nn.Linear(width, spec.out_dim)
        # The unconditional embedding: one learned token repeated to any length. Attention over identical keys
        # gives the same output whatever the length, so it can pad to match the conditional tokens' shape.
        self.null_token = nn.Parameter(torch.zeros(spec.out_dim))

    def forward(self, frames: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, N, D), mask (B, N) True = valid -> tokens (B, M, D'), mask (B, M); M = ceil(N / ratio)."""
        if mask is None:
            mask = torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)
        x = self.proj_in(frames)
        for stage in self.stages:
            x, mask = stage(x, mask)
        x = self.proj_out(self.norm(x))
        return x * mask.unsqueeze(-1), mask

    def null(self, batch: int, length: int) -> torch.Tensor:
        """The unconditional tokens (batch, length, D')."""
        return self.null_token.expand(batch, length, -1)

    def save(self, directory: Path) -> None:
        """Write config.json + model.safetensors."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(asdict(self.spec), indent=2))
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_NAME))

    @classmethod
    def load(cls, directory: Path) -> SIB:
        """Rebuild a SIB saved with `save`."""
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / CONFIG_NAME).is_file():
            raise UserError(f"no SIB in {directory} (expected {CONFIG_NAME} and {WEIGHTS_NAME})")
        raw = json.loads((directory / CONFIG_NAME).read_text())
        sib = cls(SIBSpec(**{**raw, "strides": tuple(raw["strides"])}))
        sib.load_state_dict(load_file(str(directory / WEIGHTS_NAME)))
        return sib


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
