"""F5-TTS v1 + Vocos synthesizer (the `Synthesizer` protocol): local files, several captions per sampling pass,
one seed each. Locating and validating the checkpoint files is in `f5tts_files`.
"""

from __future__ import annotations

import io
from collections import defaultdict
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voxemoset.audio import TTS_RATE
from voxemoset.models.devices import device_name
from voxemoset.models.f5tts_fast import DiTStep, FastOptions, batch_fill, bucket_length, check_fast, timesteps
from voxemoset.models.f5tts_files import F5_DOWNLOAD, F5_MODEL, check_arch, locate_f5, locate_vocos
from voxemoset.models.oom import run_halving
from voxemoset.models.protocols import SynthRequest
from voxemoset.models.safe_load import corrupt_weights_named
from voxemoset.models.vocos import load_vocos

if TYPE_CHECKING:
    import torch

    from voxemoset.config import SpeechConfig

HOP = 256  # mel frames are 256 samples at 24 kHz (F5 v1 and vocos-mel-24khz)
N_MELS = 100
REF_TAIL_S = 0.05  # F5TTS.infer's preprocess_ref_audio_text appends 50 ms of silence to the reference
TARGET_RMS = 0.1  # infer_batch_process: a quieter reference is raised to this, its output lowered back
SHORT_TEXT_BYTES = 10  # infer_batch_process: texts shorter than this are spoken at speed 0.3
MAX_DURATION = 65536  # CFM.sample's frame cap


def f5_reference(audio: np.ndarray, text: str) -> tuple[np.ndarray, str]:
    """What F5TTS.infer's preprocessing makes of a trimmed reference: 50 ms silence appended, text ending '. '."""
    text = text.strip()
    if not text:
        raise ValueError("empty reference text (F5 would download Whisper to transcribe the reference)")
    if not text.endswith("。"):
        text += " " if text.endswith(".") else ". "
    tail = np.zeros(int(REF_TAIL_S * TTS_RATE), dtype=np.float32)
    return np.concatenate([np.asarray(audio, dtype=np.float32), tail]), text


@dataclass
class _Item:
    """A request as F5 sees it: mel of the (rms-raised) reference, tokens, frame counts."""

    cond: torch.Tensor  # (frames, n_mels) float32
    rms: torch.Tensor
    tokens: list[str]
    ref_frames: int
    duration: int


class _KeyMaskedAttention:
    """F5's AttnProcessor (torch backend) with padded keys masked by a (b, 1, 1, n) mask SDPA broadcasts.

    F5 v1 ships attn_mask_enabled=False, so padding leaks into a batch; enabling it expands the mask to
    (b, h, n, n), which SDPA materialises (2x attention time on CPU, gigabytes at batch 32 on a GPU).
    """

    def __init__(self, inner: Any):
        self.inner = inner

    def __call__(self, attn: Any, x: torch.Tensor, mask: torch.Tensor | None = None, rope: Any = None):
        import torch.nn.functional as F
        from x_transformers.x_transformers import apply_rotary_pos_emb

        if mask is None:
            return self.inner(attn, x, mask=mask, rope=rope)
        b, heads = x.shape[0], attn.heads
        q, k, v = (
            f(x).view(b, -1, heads, f.out_features // heads).transpose(1, 2) for f in (attn.to_q, attn.to_k, attn.to_v)
        )
        q = attn.q_norm(q) if attn.q_norm is not None else q
        k = attn.k_norm(k) if attn.k_norm is not None else k
        if rope is not None:
            freqs, xpos = rope
            q_scale, k_scale = (xpos, xpos**-1.0) if xpos is not None else (1.0, 1.0)
            pn = self.inner.pe_attn_head
            if pn is not None:
                q[:, :pn], k[:, :pn] = (
                    apply_rotary_pos_emb(q[:, :pn], freqs, q_scale),
                    apply_rotary_pos_emb(k[:, :pn], freqs, k_scale),
                )
            else:
                q, k = apply_rotary_pos_emb(q, freqs, q_scale), apply_rotary_pos_emb(k, freqs, k_scale)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :], dropout_p=0.0, is_causal=False)
        out = attn.to_out[1](attn.to_out[0](out.transpose(1, 2).reshape(b, -1, heads * q.shape[-1]).to(q.dtype)))
        return out.masked_fill(~mask.unsqueeze(-1), 0.0)


@contextmanager
def _masked_attention(transformer: Any, on: bool):
    """While a batch of several runs, attention ignores each item's padding (as one item alone has none)."""
    attns = [block.attn for block in transformer.transformer_blocks]
    procs, flags = [a.processor for a in attns], [a.processor.attn_mask_enabled for a in attns]
    try:
        for a, p in zip(attns, procs, strict=True):
            if on and p.attn_backend == "torch":
                a.processor = _KeyMaskedAttention(p)
            elif on:
                p.attn_mask_enabled = True  # flash_attn: F5's own varlen path
        yield
    finally:
        for a, p, flag in zip(attns, procs, flags, strict=True):
            a.processor, p.attn_mask_enabled = p, flag


class F5Synthesizer:
    """F5-TTS v1 (a loaded CFM) + Vocos: length-bucketed batches, one sampling loop per batch, per-item seeds."""

    sample_rate = TTS_RATE

    def __init__(self, model: Any, vocoder: Any, *, batch_size: int = 16, nfe_step: int = 32,
                 cfg_strength: float = 2.0, sway_sampling_coef: float | None = -1.0, epss: bool = True,
                 fast: FastOptions | None = None):  # fmt: skip
        self.model, self.vocoder = model.eval(), vocoder.eval()
        self.batch_size, self.nfe_step, self.epss, self.fast = batch_size, nfe_step, epss, fast or FastOptions()
        self._step: DiTStep | None = None  # built on first use with fast.compile or fast.length_buckets
        self.cfg_strength, self.sway_sampling_coef = cfg_strength, sway_sampling_coef
        self.device = next(model.parameters()).device
        check_fast(self.fast, self.device)

    @classmethod
    def from_files(cls, checkpoint: Path, vocoder_dir: Path, vocab_file: Path | None = None, *,
                   device: str = "auto", dtype: str = "auto", **sampling: Any) -> F5Synthesizer:  # fmt: skip
        """Load F5 through its own loader and Vocos through ours (its config as data), local files only.

        dtype auto is F5's rule (fp16 on a recent GPU).
        """
        import torch
        from f5_tts.infer.utils_infer import load_model
        from f5_tts.model import DiT

        f5, vocos = locate_f5(checkpoint, vocab_file), locate_vocos(vocoder_dir)
        check_arch(f5)
        device = device_name(device)
        root = f5.checkpoint.parent  # the download's --local-dir: the folder above F5TTS_v1_Base/
        download = f"{F5_DOWNLOAD} --local-dir {root.parent if root.name == 'F5TTS_v1_Base' else root}"
        with redirect_stdout(io.StringIO()), corrupt_weights_named([f5.checkpoint], F5_MODEL, download):
            # F5 loads fp16 on a GPU: for another dtype load fp32 on the CPU and cast, not fp16 then upcast.
            # (F5's load_checkpoint reads .pt with weights_only=True and .safetensors as tensors: no code runs.)
            where = device if dtype == "auto" else "cpu"
            model = load_model(DiT, f5.arch, str(f5.checkpoint), "vocos", str(f5.vocab), device=where)
        # Not F5's load_vocoder: it calls Vocos.from_hparams, which imports any class config.yaml names.
        vocoder = load_vocos(vocos, device=device)
        if dtype != "auto":
            model = model.to(device=device, dtype=getattr(torch, dtype))
        return cls(model, vocoder, **sampling)

    def prepare(self, req: SynthRequest) -> _Item:
        """F5's rules: reference raised to target RMS, ref text + ' ', short-text speed, duration in frames."""
        import torch
        from f5_tts.model.utils import convert_char_to_pinyin

        audio, ref_text = f5_reference(req.ref_audio, req.ref_text)
        text = req.text.strip()
        if not text:
            raise ValueError("empty text")
        x = torch.from_numpy(audio)[None]
        rms = torch.sqrt(torch.mean(torch.square(x)))
        if not rms > 0:
            raise ValueError("silent reference")
        if rms < TARGET_RMS:
            x = x * TARGET_RMS / rms
        if len(ref_text[-1].encode("utf-8")) == 1:
            ref_text = ref_text + " "
        speed = 0.3 if len(text.encode("utf-8")) < SHORT_TEXT_BYTES else req.speed
        ref_frames = x.shape[-1] // HOP
        duration = ref_frames + int(ref_frames / len(ref_text.encode("utf-8")) * len(text.encode("utf-8")) / speed)
        tokens = convert_char_to_pinyin([ref_text + text])[0]
        with torch.inference_mode():
            cond = self.model.mel_spec(x.to(self.device)).permute(0, 2, 1)[0]
        # CFM.sample: at least text/reference length plus one frame, so something is generated.
        duration = min(max(max(len(tokens), cond.shape[0]) + 1, duration), MAX_DURATION)
        return _Item(cond, rms, tokens, ref_frames, duration)

    def synthesize(self, requests: list[SynthRequest]) -> list[np.ndarray]:
        """24 kHz waveforms in request order; requests of similar length share a sampling pass.

        Out of memory, the whole call runs again at half the batch size, which the synthesizer keeps (models/oom.py).
        """
        items = [self.prepare(r) for r in requests]
        return run_halving(self, lambda size: self._synthesize(items, [r.seed for r in requests], size), "F5-TTS")

    def _synthesize(self, items: list[_Item], seeds: list[int], batch_size: int) -> list[np.ndarray]:
        order = sorted(range(len(items)), key=lambda i: (items[i].duration, i))
        out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(items)
        for k in range(0, len(order), batch_size):
            idx = order[k : k + batch_size]
            run = idx + idx[-1:] * batch_fill(len(idx), batch_size, self.fast)  # repeats: fewer compiled shapes
            mels = self.sample([items[i] for i in run], [seeds[i] for i in run])[: len(idx)]
            for i, wave in zip(idx, self.vocode(mels, [items[i].rms for i in idx], batch_size), strict=True):
                out[i] = wave
        return out

    def sample(self, items: list[_Item], seeds: list[int]) -> list[torch.Tensor]:
        """CFM.sample's Euler loop for a batch, each item's noise from its own seed; mels cropped after the reference."""
        import torch
        from f5_tts.model.utils import lens_to_mask, list_str_to_idx

        with torch.inference_mode():  # every tensor an inference tensor, so a compiled step sees one kind of input
            dev, dtype = self.device, next(self.model.parameters()).dtype
            durations = torch.tensor([it.duration for it in items], device=dev)
            lens = torch.tensor([it.cond.shape[0] for it in items], device=dev)
            longest = int(durations.max())
            n = bucket_length(longest, self.fast.length_buckets)  # padding past every item is masked out
            cond = torch.zeros(len(items), n, N_MELS, device=dev, dtype=dtype)
            for i, it in enumerate(items):
                cond[i, : it.cond.shape[0]] = it.cond.to(dtype)
            cond_mask = lens_to_mask(lens, length=n).unsqueeze(-1)
            step_cond = torch.where(cond_mask, cond, torch.zeros_like(cond))
            text = list_str_to_idx([it.tokens for it in items], self.model.vocab_char_map).to(dev)
            # Padding is masked out; one unpadded item runs without a mask, as in CFM.sample.
            mask = lens_to_mask(durations, length=n) if len(items) > 1 or n > longest else None
            # Same draws as `torch.manual_seed(seed); torch.randn(dur, n_mels)`, i.e. CFM.sample(seed=...) alone.
            x = torch.zeros_like(cond)
            for i, (it, s) in enumerate(zip(items, seeds, strict=True)):
                gen = torch.Generator(dev).manual_seed(s)
                x[i, : it.duration] = torch.randn(it.duration, N_MELS, generator=gen, device=dev, dtype=dtype)
            t = timesteps(self.nfe_step, self.epss, dev, dtype)
            if self.sway_sampling_coef is not None:
                t = t + self.sway_sampling_coef * (torch.cos(torch.pi / 2 * t) - 1 + t)
            out = torch.where(cond_mask, cond, self._integrate(x, step_cond, text, t, mask))
        return [out[i, it.ref_frames : it.duration].float() for i, it in enumerate(items)]

    def _integrate(self, x: torch.Tensor, cond: torch.Tensor, text: torch.Tensor, t: torch.Tensor, mask: Any):
        """Euler steps over flow times `t`: F5's own DiT forward, or f5tts_fast.DiTStep when a fast option is on."""
        tr, fast = self.model.transformer, self.fast
        if (fast.compile or fast.length_buckets) and self._step is None:
            self._step = DiTStep(tr, self.cfg_strength, compile=fast.compile, cuda_graphs=fast.cuda_graphs,
                                 static_shapes=bool(fast.length_buckets))  # fmt: skip
        step = self._step if fast.compile or fast.length_buckets else None
        with _masked_attention(tr, mask is not None):
            try:
                embedded = step.embed(text, x.shape[1], mask) if step is not None else None
                for t0, t1 in zip(t[:-1], t[1:], strict=True):
                    v = step(embedded, x, cond, t0, mask) if step is not None else self._flow(x, cond, text, t0, mask)
                    x = x + (t1 - t0) * v
            finally:
                tr.clear_cache()  # F5's forward caches the text embedding per batch
        return x

    def _flow(self, x: torch.Tensor, cond: torch.Tensor, text: torch.Tensor, t: torch.Tensor, mask: Any):
        """Velocity with classifier-free guidance, as CFM.sample's `fn`."""
        tr = self.model.transformer
        if self.cfg_strength < 1e-5:
            return tr(x=x, cond=cond, text=text, time=t, mask=mask, drop_audio_cond=False, drop_text=False, cache=True)
        pred, null = tr(x=x, cond=cond, text=text, time=t, mask=mask, cfg_infer=True, cache=True).chunk(2, dim=0)
        return pred + (pred - null) * self.cfg_strength

    def vocode(self, mels: list[torch.Tensor], rms: list[torch.Tensor], batch_size: int) -> list[np.ndarray]:
        """Vocos on mels of equal length together (no padding, so no edge effects), loudness restored as F5 does."""
        import torch

        groups: dict[int, list[int]] = defaultdict(list)
        for i, m in enumerate(mels):
            groups[m.shape[0]].append(i)
        out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(mels)
        with torch.inference_mode():
            for idx in groups.values():
                for k in range(0, len(idx), batch_size):
                    part = idx[k : k + batch_size]
                    waves = self.vocoder.decode(torch.stack([mels[i] for i in part]).permute(0, 2, 1))
                    for i, w in zip(part, waves, strict=True):
                        if rms[i] < TARGET_RMS:
                            w = w * rms[i] / TARGET_RMS
                        out[i] = w.cpu().numpy().astype(np.float32)
        return out


def make_synthesizer(cfg: SpeechConfig) -> F5Synthesizer:
    """The configured F5-TTS synthesizer, loaded from local files."""
    return F5Synthesizer.from_files(
        cfg.checkpoint, cfg.vocoder, cfg.vocab_file, device=cfg.device, dtype=cfg.dtype,
        batch_size=cfg.batch_size, nfe_step=cfg.nfe_step, cfg_strength=cfg.cfg_strength,
        sway_sampling_coef=cfg.sway_sampling_coef, epss=cfg.epss,
        fast=FastOptions(cfg.compile, cfg.length_buckets, cfg.cuda_graphs),
    )  # fmt: skip
