"""One GPU run, one JSON: F5-TTS synthesis, the training step, LLaVA-OneVision captioning at real size, and the
speech stage's workers on every visible GPU.

    .venv/bin/python benchmarks/gpu.py [--out benchmarks/results/gpu.json] [--sections f5,train,llava,speech_gpus]
    .venv/bin/python benchmarks/gpu.py --tiny      # the same code, tiny models, on the CPU (CI; not figures)

Every model is the real architecture at random weights (no weights are needed or read), built on the GPU:
- f5: F5TTS_v1_Base DiT (fp16, F5's own GPU dtype) + Vocos mel 24 kHz through `F5Synthesizer.synthesize`;
  a 3 s reference, captions F5's duration rule speaks in 4.25 s, NFE 32, CFG 2; utterances/s one at a time
  and at batch 16 and 64; path `eager`, then path `fast` (torch.compile + length buckets + CUDA graphs,
  the `speech.compile/length_buckets/cuda_graphs` settings) when the installed synthesizer has it. At NFE 32
  both paths use the uniform step table (F5 has EPSS tables only for 5-16 steps).
- train: the trainer's step (SpeechToImage.forward, bf16 autocast, clipped grads, fp32 AdamW) on the SD-1.5
  UNet with a SIB at Whisper-large-v3 width (1280), batch 32 of cached 64x64 latents and 250 frames (5 s);
  modes frozen, lora and full; TFLOP per step from torch's FlopCounterMode over one step.
- llava: SigLIP so400m + Qwen2-7B through the transformers captioning backend (`TransformersCaptioner`),
  bf16, 500x375 images (anyres tiles), the project's prompt and sampling settings, 160 new tokens, batch 1
  and 32. The tokenizer is the tiny test BPE (no Qwen2 vocabulary ships without weights), so the prompt's
  text part is longer than Qwen2's would be; the image tokens, which dominate, are exact.
- speech_gpus: the speech stage's workers as a build on Ray runs them, one Ray actor per visible GPU (each sees
  only its own), each holding F5TTS_v1_Base + Vocos built once; 64 utterances per worker at batch 16, NFE 32, on
  1, 2, ... N workers at once: aggregate utterances/s and the speed-up over one GPU (benchmarks/gpu_scale.py).

Time budget (one H100/H200, <= 8 minutes in all): imports ~20 s; f5 <= 180 s (build ~10 s, eager rows ~60 s,
then the fast path, whose warm-up call compiles one graph per batch size, ~1 min each); train <= 90 s (~25 s a
mode); llava <= 110 s (build ~30 s, batch 1 ~15 s, batch 32 ~30 s); speech_gpus <= 60 s on one GPU (Ray ~5 s,
each worker builds its model ~10 s, in parallel, then one call per worker count; rows past its budget skipped). Each row does its warm-up calls, then
timed calls until at least its minimum count is done and its own small budget (10-20 s) is spent. A row
that would start past its section's budget, or more than 420 s into the run, is recorded as skipped (one
row already running may overrun by up to ~1 min); an error (out of memory included) is recorded in its row
or section and the run goes on. The JSON is rewritten after every section, so a killed run keeps its rows.
`--tiny` runs everything once at test sizes (F5 NFE 4 at batch 1 and 2; LLaVA batch 1 and 2, 8 new tokens; 2
speech workers on 2 GPUs a local Ray instance declares, used as CPU devices).

JSON schema (every key is always present; figures are null in a row whose status is not "ok"):

    schema                                "voxemoset-gpu-bench/1"
    tiny                                  true: tiny models on the CPU, a smoke check and not figures
    device                                "cuda" or "cpu"
    started_utc                           ISO time the run started
    wall_s                                seconds the whole run took
    peak_bf16_tflops                      the GPU's dense bf16 peak from a table by name (H100/H200 989, A100 312), else null
    env.python                            Python version
    env.platform                          OS and machine
    env.torch                             torch version
    env.cuda                              CUDA version torch was built with (null on a CPU build)
    env.cudnn                             cuDNN version (null without CUDA)
    env.transformers                      transformers version
    env.diffusers                         diffusers version
    env.f5_tts                            f5-tts version
    env.peft                              peft version
    env.gpu                               GPU name (null without one)
    env.gpu_count                         GPUs visible
    env.driver                            NVIDIA driver version from nvidia-smi (null without it)
    env.cpu_count                         CPU cores
    sections.<name>                       one of f5, train, llava, speech_gpus:
    sections.<name>.status                "ok", "error" (the section failed before its rows) or "skipped" (not asked for)
    sections.<name>.error                 the failure, or null
    sections.<name>.wall_s                seconds the section took (null when skipped)
    sections.<name>.budget_s              the section's time budget
    sections.<name>.config                what was measured (sizes, dtype, settings); {} when skipped
    sections.<name>.rows[].status         "ok", "error" or "skipped"
    sections.<name>.rows[].error          what went wrong, or null
    sections.<name>.rows[].peak_memory_gb torch.cuda.max_memory_allocated over the row (weights included), GB; null on CPU
    sections.<name>.rows[].iters          timed calls
    sections.<name>.rows[].warmup_s       seconds of warm-up calls (compilation included)
    sections.<name>.rows[].batch_size     items per call
    sections.f5.config.tflop_per_utterance  FLOPs torch counts for one utterance alone, in TFLOP (null if uncounted)
    sections.f5.config.generated_s        seconds of speech each caption makes
    sections.f5.config.fast_path          "measured", "measured uncompiled (CPU)", or why the fast rows are absent
    sections.f5.rows[].path               "eager" or "fast"
    sections.f5.rows[].options            the synthesizer's extra options for this path
    sections.f5.rows[].utterances         utterances timed
    sections.f5.rows[].seconds            seconds of the timed calls
    sections.f5.rows[].utt_per_s          utterances per second
    sections.train.rows[].mode            "frozen", "lora" or "full"
    sections.train.rows[].step_s          seconds per optimiser step
    sections.train.rows[].images_per_s    training images per second
    sections.train.rows[].trainable_params_m  trained parameters, millions
    sections.train.rows[].tflop_per_step  FLOPs of one step (forward + backward), TFLOP
    sections.train.rows[].achieved_tflops tflop_per_step / step_s
    sections.train.rows[].peak_share      achieved_tflops / peak_bf16_tflops (null when the peak is unknown)
    sections.llava.config.params_m        model parameters, millions
    sections.llava.config.image_tokens    prompt tokens one 500x375 image becomes (anyres tiles + base image)
    sections.llava.rows[].images          images timed
    sections.llava.rows[].seconds         seconds of the timed calls
    sections.llava.rows[].images_per_s    images captioned per second
    sections.llava.rows[].prompt_tokens   prompt tokens of one image (image tokens included)
    sections.llava.rows[].new_tokens      decoding steps of the last generate call
    sections.speech_gpus.config.workers   speech workers started, one per GPU
    sections.speech_gpus.config.worker_gpus  the GPU ids Ray gave each worker (one each)
    sections.speech_gpus.rows[].gpus      workers (GPUs) synthesizing at once
    sections.speech_gpus.rows[].utterances  utterances synthesized by them together
    sections.speech_gpus.rows[].seconds   seconds until the last of them finished
    sections.speech_gpus.rows[].utt_per_s aggregate utterances per second
    sections.speech_gpus.rows[].speedup   utt_per_s over the one-GPU row's
    sections.speech_gpus.rows[].load_s    seconds each worker took to build its model and warm up
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import gpu_scale
import gpu_sections
import torch
from bench_train import peak_tflops  # the one table of dense bf16 peaks

SCHEMA = "voxemoset-gpu-bench/1"
SECTIONS = ("f5", "train", "llava", "speech_gpus")
BUDGET_S = {"f5": 180, "train": 90, "llava": 110, "speech_gpus": 60}
RUN_BUDGET_S = 420  # no row starts later than this after the first section began
TINY_OUT = Path(tempfile.gettempdir()) / "voxemoset-gpu-tiny.json"


def version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def driver() -> str | None:
    """The NVIDIA driver version, from nvidia-smi when it is there."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def environment() -> dict:
    """Versions, GPU and driver."""
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "transformers": version("transformers"),
        "diffusers": version("diffusers"),
        "f5_tts": version("f5-tts"),
        "peft": version("peft"),
        "gpu": torch.cuda.get_device_name() if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "driver": driver() if cuda else None,
        "cpu_count": os.cpu_count(),
    }


def run_section(name: str, tiny: bool, device: torch.device, peak: float | None, run_deadline: float) -> dict:
    """One section, its failure caught: status, error, wall_s, budget_s, config, rows."""
    t0 = time.monotonic()
    deadline = min(t0 + BUDGET_S[name], run_deadline)
    out = {"status": "ok", "error": None, "wall_s": None, "budget_s": BUDGET_S[name], "config": {}, "rows": []}
    try:
        if name == "f5":
            got = gpu_sections.measure_f5(tiny, device, deadline)
        elif name == "train":
            got = gpu_sections.measure_train(tiny, device, deadline, peak)
        elif name == "speech_gpus":
            got = gpu_scale.measure_speech_gpus(tiny, device, deadline, gpu_sections.guarded)
        else:
            got = gpu_sections.measure_llava(tiny, device, deadline)
        out.update(got)
    except Exception as exc:  # a section that cannot even build its model: recorded, the next section runs
        import traceback

        traceback.print_exc(file=sys.stderr)
        out.update(status="error", error=f"{type(exc).__name__}: {exc}"[:600])
    torch.compiler.reset()  # compiled graphs (and their CUDA graph memory) of the fast F5 path go
    gpu_sections.free(device)
    out["wall_s"] = round(time.monotonic() - t0, 1)
    return out


def main() -> None:
    """Run the asked sections and write the JSON after each."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny models on the CPU: checks the script, measures nothing")
    ap.add_argument("--out", type=Path, help=f"default: benchmarks/results/gpu.json ({TINY_OUT} with --tiny)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of " + ",".join(SECTIONS))
    args = ap.parse_args()
    asked = [s.strip() for s in args.sections.split(",") if s.strip()]
    if unknown := sorted(set(asked) - set(SECTIONS)):
        ap.error(f"unknown sections: {', '.join(unknown)}")
    out = args.out or (TINY_OUT if args.tiny else Path(__file__).parent / "results" / "gpu.json")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    if device.type == "cpu" and not args.tiny:
        sys.exit("gpu.py measures a GPU and none is visible; use --tiny for the CPU smoke check")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # as the trainer sets it
    env = environment()
    peak = peak_tflops(env["gpu"]) if device.type == "cuda" else None
    t0 = time.monotonic()
    result = {"schema": SCHEMA, "tiny": args.tiny, "device": device.type,
              "started_utc": datetime.now(UTC).isoformat(timespec="seconds"), "wall_s": None,
              "peak_bf16_tflops": peak, "env": env, "sections": {}}  # fmt: skip
    for name in SECTIONS:
        result["sections"][name] = {"status": "skipped", "error": None, "wall_s": None, "budget_s": BUDGET_S[name],
                                    "config": {}, "rows": []}  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in [s for s in SECTIONS if s in asked]:
        print(f"[gpu.py] {name} ...", file=sys.stderr, flush=True)
        result["sections"][name] = run_section(name, args.tiny, device, peak, t0 + RUN_BUDGET_S)
        result["wall_s"] = round(time.monotonic() - t0, 1)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"[gpu.py] {name}: {json.dumps(result['sections'][name]['rows'])}", file=sys.stderr, flush=True)
    result["wall_s"] = round(time.monotonic() - t0, 1)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
