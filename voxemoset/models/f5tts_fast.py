"""Faster F5 sampling, each option checked against the eager path: batches padded to a few fixed lengths,
a torch.compile'd DiT step (CUDA graphs on a GPU), and the step table (EPSS or uniform).

Padding and compiling change only float rounding (tests/test_fast_synthesis.py states the tolerances), so
they are speed-only settings; the step table changes the audio, so it keys outputs.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voxemoset.errors import UserError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FastOptions:
    """How a sampling pass runs: compiled or eager, padded to which lengths, with CUDA graphs or not."""

    compile: bool = False
    length_buckets: tuple[int, ...] = ()  # mel frames a batch is padded up to; () pads to the batch's longest
    cuda_graphs: bool = False  # with compile, on CUDA only: torch.compile mode "reduce-overhead"


def check_fast(fast: FastOptions, device: Any) -> None:
    """Refuse at load time what would fail every batch later: compiling on the CPU without a C++ compiler."""
    cxx = os.environ.get("CXX") or "g++"  # what inductor's CPU backend calls
    if fast.compile and str(device).startswith("cpu") and shutil.which(cxx) is None:
        raise UserError(
            f"speech.compile on the CPU needs a C++ compiler ({cxx} not found): install g++ or set it false"
        )


def bucket_length(frames: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket holding `frames`; past the largest bucket, `frames` itself (that batch runs unpadded)."""
    return min((b for b in buckets if b >= frames), default=frames)


def batch_fill(n: int, batch_size: int, fast: FastOptions) -> int:
    """How many repeats of its last item round a compiled, bucketed batch of `n` up to a power of two (at most
    `batch_size`): a shard's last, smaller batch then reuses a graph instead of compiling its own."""
    if not (fast.compile and fast.length_buckets):
        return 0
    return min(batch_size, 1 << (n - 1).bit_length()) - n


def timesteps(nfe: int, epss: bool, device: Any, dtype: Any) -> torch.Tensor:
    """The flow times 0..1: F5's EPSS table where it has one for `nfe` (5, 6, 7, 10, 12, 16), else uniform."""
    import torch
    from f5_tts.model.utils import get_epss_timesteps

    if epss:  # CFM.sample's default (use_epss=True); uniform for any other nfe, 32 included
        return get_epss_timesteps(nfe, device=device, dtype=dtype)
    return torch.linspace(0, 1, nfe + 1, device=device, dtype=dtype)


def velocity(tr: Any, x: torch.Tensor, cond: torch.Tensor, text_cond: torch.Tensor, text_uncond: torch.Tensor,
             time: torch.Tensor, mask: torch.Tensor | None, rope: Any, cfg_strength: float) -> torch.Tensor:  # fmt: skip
    """DiT.forward(cfg_infer=True) with guidance applied, from text embeddings computed beforehand.

    DiT.forward embeds the text on its first call (`.item()`, a thread-local cache: graph breaks); here that
    runs once per batch outside, and this function holds only fixed-shape tensor work, so it compiles whole.
    """
    import torch

    t = tr.time_embed(time.expand(x.shape[0]))
    h = tr.input_embed(x, cond, text_cond, drop_audio_cond=False, audio_mask=mask)
    if cfg_strength >= 1e-5:  # guided: conditional and unconditional halves in one pass, as F5 packs them
        h = torch.cat((h, tr.input_embed(x, cond, text_uncond, drop_audio_cond=True, audio_mask=mask)))
        t = torch.cat((t, t))
        mask = torch.cat((mask, mask)) if mask is not None else None
    residual = h
    for block in tr.transformer_blocks:
        h = block(h, t, mask=mask, rope=rope)
    if tr.long_skip_connection is not None:
        h = tr.long_skip_connection(torch.cat((h, residual), dim=-1))
    out = tr.proj_out(tr.norm_out(h, t))
    if cfg_strength < 1e-5:
        return out
    pred, null = out.chunk(2, dim=0)
    return pred + (pred - null) * cfg_strength


class DiTStep:
    """The guided velocity, step after step: a batch's text embedded once (`embed`), then `velocity`, compiled
    or not. Holds no batch state. Compiled graphs are reused for every batch of the same shapes."""

    def __init__(self, transformer: Any, cfg_strength: float, *, compile: bool = True, cuda_graphs: bool = False,
                 static_shapes: bool = False):  # fmt: skip
        import torch

        self.tr, self.cfg_strength = transformer, cfg_strength
        on_cuda = next(transformer.parameters()).is_cuda
        self.cuda_graphs = compile and cuda_graphs and on_cuda
        if cuda_graphs and not self.cuda_graphs:
            log.warning("speech.cuda_graphs needs speech.compile and a CUDA device: running without CUDA graphs")
        mode = "reduce-overhead" if self.cuda_graphs else None
        if compile:  # a graph per (bucket, batch size, mask or none): more than dynamo's default 8 (process-wide)
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        # Static shapes with buckets (a graph per bucket and batch size); otherwise torch decides after a recompile.
        self.fn = torch.compile(velocity, mode=mode, dynamic=False if static_shapes else None) if compile else velocity

    def embed(self, text: torch.Tensor, frames: int, mask: torch.Tensor | None) -> tuple:
        """A batch's text embedded with and without the text (for guidance), and the rotary table for `frames`."""
        import torch.nn.functional as F

        seq_len = frames if mask is None else mask.sum(dim=1)  # as DiT.get_input_embed
        # F5 embeds to the longest item; a batch padded to a bucket is longer: its tail is zero, as each item's.
        embeds = (self.tr.text_embed(text, seq_len, drop_text=d) for d in (False, True))
        cond, uncond = (F.pad(e, (0, 0, 0, frames - e.shape[1])) for e in embeds)
        return cond, uncond, self.tr.rotary_embed.forward_from_seq_len(frames)

    def __call__(self, embedded: tuple, x: torch.Tensor, cond: torch.Tensor, time: torch.Tensor,
                 mask: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """The guided velocity at flow time `time` (a 0-d tensor), `embedded` from `embed`."""
        import torch

        if self.cuda_graphs:  # the previous step's output is consumed: its graph buffers may be reused
            torch.compiler.cudagraph_mark_step_begin()
        text_cond, text_uncond, rope = embedded
        return self.fn(self.tr, x, cond, text_cond, text_uncond, time, mask, rope, self.cfg_strength)
