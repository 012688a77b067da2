"""The three measured sections of benchmarks/gpu.py (F5 synthesis, the training step, LLaVA captioning) and the
timing, memory and failure bookkeeping they share. Each section returns {"config": {...}, "rows": [...]}; a row
that fails (out of memory included) or would start past its section's time budget is recorded, not raised.
"""

from __future__ import annotations

import gc
import inspect
import sys
import time
import traceback
from collections.abc import Callable
from typing import NamedTuple

import gpu_models as gm
import torch

F5_ROW = ("path", "batch_size", "utterances", "iters", "warmup_s", "seconds", "utt_per_s", "options")
TRAIN_ROW = ("mode", "batch_size", "iters", "warmup_s", "step_s", "images_per_s", "trainable_params_m",
             "tflop_per_step", "achieved_tflops", "peak_share")  # fmt: skip
LLAVA_ROW = ("batch_size", "images", "iters", "warmup_s", "seconds", "images_per_s", "prompt_tokens", "new_tokens")
COMMON_ROW = ("status", "error", "peak_memory_gb")


class Iters(NamedTuple):
    """Warm-up calls, then timed calls: at least `least`, at most `most`, stopping once `budget_s` is spent."""

    warmup: int
    least: int
    most: int
    budget_s: float


TINY_ITERS = Iters(0, 1, 1, 0.0)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, it: Iters) -> dict:
    """Warm up, then time calls of `fn` (synchronised): warmup_s, iters, seconds (timed calls only)."""
    t0 = time.perf_counter()
    for _ in range(it.warmup):
        fn()
    sync(device)
    warm, times = time.perf_counter() - t0, []
    start = time.perf_counter()
    while len(times) < it.most and (len(times) < it.least or time.perf_counter() - start < it.budget_s):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return {"warmup_s": round(warm, 2), "iters": len(times), "seconds": round(sum(times), 3)}


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def guarded(fields: tuple[str, ...], base: dict, fn: Callable[[], dict], device: torch.device, deadline: float) -> dict:
    """One row: `fn`'s figures, or status error/skipped with the figures null; peak memory of this row alone."""
    row = {**dict.fromkeys(fields + COMMON_ROW), **base, "status": "ok"}
    if time.monotonic() > deadline:
        return {**row, "status": "skipped", "error": "the section's time budget was spent"}
    free(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        row.update(fn())
    except Exception as exc:  # out of memory and any other failure: recorded, the next row still runs
        traceback.print_exc(file=sys.stderr)
        row.update(status="error", error=f"{type(exc).__name__}: {exc}"[:600])
    if device.type == "cuda":
        row["peak_memory_gb"] = round(torch.cuda.max_memory_allocated(device) / 1e9, 2)
    free(device)
    return row


def flops_of(fn: Callable[[], object]) -> int:
    """FLOPs torch counts (matmuls, convolutions, attention) for one call of `fn`."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


# --- F5-TTS ----------------------------------------------------------------------------------------------------
F5_REAL = {1: Iters(1, 3, 8, 10.0), 16: Iters(1, 1, 3, 12.0), 64: Iters(1, 1, 2, 15.0)}
F5_TINY_BATCHES = (1, 2)
FAST_BUCKETS = tuple(range(256, 2049, 64))  # mel frames; a 3 s + 4.25 s utterance (~683 frames) pads to 704


def f5_paths(tiny: bool, device: torch.device) -> tuple[dict[str, dict], str]:
    """Synthesizer options per path, and what became of the fast path: eager, and the fast path (compile + length
    buckets + CUDA graphs) when the installed F5Synthesizer has it. On the CPU (--tiny) the fast path runs
    uncompiled: compiling takes minutes there."""
    from voxemoset.models.f5tts import F5Synthesizer

    paths: dict[str, dict] = {"eager": {}}
    if "fast" not in inspect.signature(F5Synthesizer.__init__).parameters:
        return paths, "absent: F5Synthesizer takes no `fast` options"
    try:
        from voxemoset.models.f5tts_fast import FastOptions

        on_gpu = device.type == "cuda" and not tiny
        paths["fast"] = {"fast": FastOptions(compile=on_gpu, length_buckets=FAST_BUCKETS, cuda_graphs=on_gpu)}
    except Exception as exc:  # an API that moved: the eager rows still run
        return paths, f"unavailable: {type(exc).__name__}: {exc}"[:300]
    return paths, "measured" if on_gpu else "measured uncompiled (CPU)"


def measure_f5(tiny: bool, device: torch.device, deadline: float) -> dict:
    """Utterances/s through F5Synthesizer, one at a time and batched, per path; TFLOP of one utterance."""
    from voxemoset.models.f5tts import F5Synthesizer
    from voxemoset.models.protocols import SynthRequest

    dtype = torch.float16 if device.type == "cuda" else torch.float32  # F5's own rule: fp16 on a GPU
    nfe, ref_s, caption_s = (4 if tiny else 32), 3.0, 4.25
    model, vocoder = gm.build_f5(tiny, device, dtype)
    caption = gm.caption_for(caption_s, ref_s)
    ref = gm.reference(ref_s)
    batches = F5_TINY_BATCHES if tiny else tuple(F5_REAL)
    reqs = [SynthRequest(caption, ref, gm.REF_TEXT, seed=1000 + i) for i in range(max(batches))]
    probe = F5Synthesizer(model, vocoder, batch_size=1, nfe_step=nfe, cfg_strength=2.0)
    item = probe.prepare(reqs[0])
    rows = []
    paths, fast_path = f5_paths(tiny, device)
    for name, options in paths.items():
        for b in batches:

            def run(b=b, options=options) -> dict:
                synth = F5Synthesizer(model, vocoder, batch_size=b, nfe_step=nfe, cfg_strength=2.0, **options)
                t = timed(lambda: synth.synthesize(reqs[:b]), device, TINY_ITERS if tiny else F5_REAL[b])
                return {**t, "utterances": b * t["iters"], "utt_per_s": round(b * t["iters"] / t["seconds"], 3)}

            opts = {k: (v.__dict__ if hasattr(v, "__dict__") else v) for k, v in options.items()}
            rows.append(guarded(F5_ROW, {"path": name, "batch_size": b, "options": opts}, run, device, deadline))
    try:
        tflop = round(flops_of(lambda: probe.synthesize(reqs[:1])) / 1e12, 6)
    except Exception:  # the rows stand without it
        traceback.print_exc(file=sys.stderr)
        tflop = None
    return {
        "config": {
            "model": "F5TTS_v1_Base" if not tiny else "tiny DiT (voxemoset.models.tiny.f5tts.ARCH)",
            "arch": gm.f5_arch(tiny),
            "dit_params_m": gm.n_params(model.transformer),
            "vocoder_params_m": gm.n_params(vocoder),
            "dtype": str(dtype).removeprefix("torch."),
            "nfe_step": nfe,
            "cfg_strength": 2.0,
            "reference_s": ref_s,
            "caption": caption,
            "generated_s": round((item.duration - item.ref_frames) * 256 / gm.TTS_RATE, 2),
            "frames": item.duration,
            "tflop_per_utterance": tflop,
            "fast_path": fast_path,
        },
        "rows": rows,
    }


# --- training step ---------------------------------------------------------------------------------------------
TRAIN_REAL = Iters(3, 5, 20, 12.0)
TRAIN_BATCH = 32


def measure_train(tiny: bool, device: torch.device, deadline: float, peak_tflops: float | None) -> dict:
    """Images/s, TFLOP per step and share of the bf16 peak of the trainer's step, for frozen, lora and full."""
    import bench_train

    batch_size = 2 if tiny else TRAIN_BATCH
    rows = []
    for mode in ("frozen", "lora", "full"):

        def run(mode=mode) -> dict:
            from voxemoset.train.sib import count_parameters

            torch.manual_seed(0)
            with device:  # weights initialised where they run
                model, in_dim = bench_train.build(mode, tiny, device)
            params = [p for p in model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(params, lr=1e-6)
            batch = bench_train.batch_for(batch_size, in_dim, tiny, device)
            gen = torch.Generator(device).manual_seed(0)

            def step() -> None:  # the trainer's step: bf16 autocast on a GPU, clipped grads, fp32 AdamW
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    loss = model(batch, gen)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            flops = flops_of(step)
            t = timed(step, device, TINY_ITERS if tiny else TRAIN_REAL)
            step_s = t["seconds"] / t["iters"]
            achieved = flops / step_s / 1e12
            return {
                **{k: t[k] for k in ("iters", "warmup_s")},
                "step_s": round(step_s, 4),
                "images_per_s": round(batch_size / step_s, 2),
                "trainable_params_m": round(count_parameters(model) / 1e6, 2),
                "tflop_per_step": round(flops / 1e12, 6),
                "achieved_tflops": round(achieved, 4),
                "peak_share": round(achieved / peak_tflops, 3) if peak_tflops else None,
            }

        rows.append(guarded(TRAIN_ROW, {"mode": mode, "batch_size": batch_size}, run, device, deadline))
    side, frames = (16, 40) if tiny else (64, 250)
    return {
        "config": {
            "unet": "tiny (bench_train.TINY_UNET)" if tiny else "SD-1.5 (bench_train.SD15_UNET)",
            "sib_in_dim": 24 if tiny else 1280,
            "latent_side": side,
            "speech_frames": frames,
            "precision": "bf16 autocast, frozen bf16, trained fp32" if device.type == "cuda" else "fp32",
            "optimizer": "AdamW fp32, grad clip 1.0",
        },
        "rows": rows,
    }


# --- LLaVA-OneVision captioning --------------------------------------------------------------------------------
LLAVA_REAL = {1: Iters(1, 2, 5, 12.0), 32: Iters(1, 1, 2, 20.0)}
LLAVA_TINY_BATCHES = (1, 2)


def measure_llava(tiny: bool, device: torch.device, deadline: float) -> dict:
    """Images/s of the transformers captioning backend (batched generate, per-row seeded sampling)."""
    from voxemoset.config import CaptionsConfig
    from voxemoset.models.captioners.llava_transformers import TransformersCaptioner
    from voxemoset.resources import default_prompt

    cfg = CaptionsConfig()
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    max_new = 8 if tiny else cfg.max_new_tokens
    processor, model = gm.build_llava(tiny, device, dtype)
    batches = LLAVA_TINY_BATCHES if tiny else tuple(LLAVA_REAL)
    captioner = TransformersCaptioner(processor, model, default_prompt().read_text(), "bench", max_new,
                                      cfg.temperature, cfg.top_p, batch_size=max(batches))  # fmt: skip
    steps: list[int] = []  # decoding steps of each generate call (random weights rarely stop early)
    plain_generate = model.generate

    def generate(*args, **kwargs):
        out = plain_generate(*args, **kwargs)
        steps.append(out.shape[1] - kwargs["input_ids"].shape[1])
        return out

    model.generate = generate
    images = [gm.photo(i) for i in range(max(batches))]
    ids = processor(images=images[:1], text=[captioner.text], return_tensors="pt")["input_ids"]
    prompt_tokens, image_tokens = ids.shape[1], int((ids == model.config.image_token_index).sum())
    rows = []
    for b in batches:

        def run(b=b) -> dict:
            it = TINY_ITERS if tiny else LLAVA_REAL[b]
            t = timed(lambda: captioner.caption(images[:b], list(range(b))), device, it)
            return {**t, "images": b * t["iters"], "images_per_s": round(b * t["iters"] / t["seconds"], 3),
                    "prompt_tokens": prompt_tokens, "new_tokens": steps[-1]}  # fmt: skip

        rows.append(guarded(LLAVA_ROW, {"batch_size": b}, run, device, deadline))
    return {
        "config": {
            "model": "tiny LLaVA-OneVision" if tiny else "LLaVA-OneVision-qwen2-7b (SigLIP so400m + Qwen2-7B)",
            "params_m": gm.n_params(model),
            "dtype": str(dtype).removeprefix("torch."),
            "image_px": [500, 375],
            "image_tokens": image_tokens,
            "max_new_tokens": max_new,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "tokenizer": "the tiny test BPE (byte-level, 384 merges): the prompt's text runs longer than Qwen2's",
        },
        "rows": rows,
    }
