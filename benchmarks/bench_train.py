"""Training throughput of the real-size architectures at random weights: SD-1.5 UNet + SIB, GPU only.

    .venv/bin/python benchmarks/bench_train.py [--batch-size 32] [--modes frozen lora full] [--steps 10]
    .venv/bin/python benchmarks/bench_train.py --tiny      # CPU smoke check of this script (tiny sizes, no figures)

One training step is the trainer's own `SpeechToImage.forward` (cached latents 64x64 = 512 px images, 250
Whisper-large-v3 frames = 5 s of speech -> 32 SIB tokens), bf16 autocast, fp32 AdamW on the trained weights,
eager. Reports images/s, peak GPU memory and MFU: FLOPs of one step counted by torch's FlopCounterMode
(forward + backward matmuls and convolutions) x steps/s / the GPU's dense bf16 peak. Writes
benchmarks/results/train.json. Without CUDA it exits with a message (except --tiny).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

# Dense bf16 tensor-core peaks (TFLOP/s, vendors' data sheets), first match in the GPU's name wins: an H100 SXM
# calls itself "NVIDIA H100 80GB HBM3". benchmarks/gpu.py reads the same table.
PEAK_BF16_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("A100", 312.0))

SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}
SD15_VAE = {
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "latent_channels": 4,
    "layers_per_block": 2,
    "sample_size": 512,
}
TINY_UNET = {
    "sample_size": 16,
    "block_out_channels": (4, 8),
    "layers_per_block": 1,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "cross_attention_dim": 32,
    "norm_num_groups": 2,
}
TINY_VAE = {
    "block_out_channels": (4, 8),
    "down_block_types": ("DownEncoderBlock2D",) * 2,
    "up_block_types": ("UpDecoderBlock2D",) * 2,
    "norm_num_groups": 2,
}


def peak_tflops(name: str | None, override: float | None = None) -> float | None:
    """The GPU's dense bf16 peak, from its name (or --peak-tflops); None for a GPU not in the table."""
    if override:
        return override
    return next((peak for key, peak in PEAK_BF16_TFLOPS if name and key in name), None)


def build(mode: str, tiny: bool, device: torch.device):
    """The trainer's model at random weights: SD-1.5 UNet (+ LoRA), VAE config, SIB for Whisper-large-v3 frames."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    from voxemoset.train.model import SpeechToImage, add_lora
    from voxemoset.train.sib import SIB, SIBSpec

    unet = UNet2DConditionModel(**(TINY_UNET if tiny else SD15_UNET))
    vae = AutoencoderKL(**(TINY_VAE if tiny else SD15_VAE))  # only its config is used: latents are cached
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
    in_dim, heads = (24, 2) if tiny else (1280, 8)
    sib = SIB(SIBSpec(in_dim=in_dim, out_dim=unet.config.cross_attention_dim, strides=(2, 2, 2), heads=heads))
    vae.requires_grad_(False).to(device)
    if mode == "full":
        unet.to(device)
    else:
        unet.requires_grad_(False).to(device)
    if device.type == "cuda":  # frozen weights in bf16, as the trainer keeps them
        vae.to(dtype=torch.bfloat16)
        if mode != "full":
            unet.to(dtype=torch.bfloat16)
    if mode == "lora":
        add_lora(unet, rank=4, alpha=4)
        for p in unet.parameters():
            if p.requires_grad:
                p.data = p.data.float()
    model = SpeechToImage(sib.to(device), unet, vae, scheduler, cond_dropout=0.1).train()
    return model, in_dim


def batch_for(batch_size: int, in_dim: int, tiny: bool, device: torch.device) -> dict:
    """Cached latent moments + 5 s of frames per sample."""
    side, frames = (16, 40) if tiny else (64, 250)
    return {
        "moments": torch.randn(batch_size, 8, side, side, device=device),
        "frames": torch.randn(batch_size, frames, in_dim, device=device),
        "frame_mask": torch.ones(batch_size, frames, dtype=torch.bool, device=device),
    }


def measure(mode: str, args, device: torch.device) -> dict:
    """Images/s, peak memory and FLOPs per step of one training mode."""
    from torch.utils.flop_counter import FlopCounterMode

    from voxemoset.train.sib import count_parameters

    torch.manual_seed(0)
    model, in_dim = build(mode, args.tiny, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-6)
    batch = batch_for(args.batch_size, in_dim, args.tiny, device)
    gen = torch.Generator(device).manual_seed(0)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step() -> None:
        with autocast:
            loss = model(batch, gen)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops()
    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / args.steps
    out = {
        "trainable_params_M": round(count_parameters(model) / 1e6, 2),
        "sib_params_M": round(count_parameters(model.sib) / 1e6, 2),
        "step_s": round(seconds, 4),
        "images_per_s": round(args.batch_size / seconds, 1),
        "tflop_per_step": round(flops / 1e12, 2),
        "achieved_tflops": round(flops / seconds / 1e12, 1),
    }
    if device.type == "cuda":
        out["peak_memory_GB"] = round(torch.cuda.max_memory_allocated() / 1e9, 1)
        if args.peak:
            out["mfu"] = round(flops / seconds / (args.peak * 1e12), 3)
    return out


def main() -> None:
    """Measure every requested mode and write benchmarks/results/train.json (GPU runs only)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--modes", nargs="+", default=["frozen", "lora", "full"], choices=["frozen", "lora", "full"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak if the GPU is not known")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: a smoke check of this script, on any device")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train.json")
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.tiny:
        print("bench_train.py needs a CUDA GPU (SD-1.5 at batch 32, 512 px); use --tiny for a CPU smoke check")
        sys.exit(2)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.tiny:
        args.batch_size, args.steps, args.warmup = min(args.batch_size, 2), min(args.steps, 2), 1
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    args.peak = peak_tflops(name, args.peak_tflops) if device.type == "cuda" else None
    result = {
        "what": "training step throughput, SD-1.5 UNet + SIB (Whisper-large-v3 frames), random weights, bf16 autocast",
        "device": name,
        "peak_bf16_tflops": args.peak,
        "batch_size": args.batch_size,
        "resolution_px": 128 if args.tiny else 512,
        "torch": torch.__version__,
        "modes": {},
    }
    for mode in args.modes:
        result["modes"][mode] = measure(mode, args, device)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the previous mode's model is gone once measure returns
        print(mode, json.dumps(result["modes"][mode]), flush=True)
    if args.tiny:
        print("tiny smoke check: no figures written")
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
