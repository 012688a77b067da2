"""`voxemoset train`: one readable loop (accelerate) fitting the SIB, and optionally the UNet, with the diffusion loss.

A checkpoint is a folder `checkpoint-<step>/` holding:
  sib/                               SIB config.json + model.safetensors
  pytorch_lora_weights.safetensors   mode lora: diffusers format (`pipe.load_lora_weights(checkpoint)`)
  unet/                              mode full: `UNet2DConditionModel.save_pretrained`
  train_config.json                  the run's TrainConfig (generate/evaluate read it)
  training_state.pt, rng-<rank>.pt   optimiser, LR schedule, grad scaler, step; noise generator and RNG per rank
Checkpoints are written to a temp folder and renamed, so a killed run never leaves a half checkpoint.

Several processes (`torchrun --nproc_per_node N -m voxemoset.cli train ...`, or `accelerate launch --multi_gpu`):
the main process caches latents and embeddings first, writes the log and the checkpoint; every rank adds its own
rng-<rank>.pt; the samplers give each rank a disjoint share of every global batch.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from voxemoset.errors import UserError
from voxemoset.train.config import TrainConfig
from voxemoset.train.model import SpeechToImage, add_lora, load_diffusion
from voxemoset.train.sib import SIB, WEIGHTS_NAME, SIBSpec, count_parameters

if TYPE_CHECKING:
    from voxemoset.train.frontend import SpeechFrontEnd

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class TrainResult:
    """What a run did: the mean loss of every optimiser step it ran, where it ended, its last checkpoint."""

    losses: list[float] = field(default_factory=list)
    step: int = 0
    checkpoint: Path | None = None
    samples: dict[str, int] = field(default_factory=dict)  # rows trained on per mixture dataset (this rank)
    main_process: bool = True  # False on the other ranks of a several-process run: they report nothing


def checkpoints(output_dir: Path) -> list[Path]:
    """`checkpoint-<step>` folders, oldest first."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def find_checkpoint(output_dir: Path, resume: str) -> Path | None:
    """`latest` -> the newest checkpoint (None on a fresh run); anything else is a checkpoint folder."""
    if resume == "latest":
        found = checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / "training_state.pt").is_file():
        raise UserError(f"--resume {resume}: not a checkpoint folder (no training_state.pt)")
    return path


def _save_lora(unet, directory: Path) -> None:
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(
        directory,
        unet_lora_layers=layers,
        safe_serialization=True,
        unet_lora_adapter_metadata=unet.peft_config["default"].to_dict(),  # keeps lora_alpha for loaders
    )


def _load_lora(unet, directory: Path) -> None:
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft import set_peft_model_state_dict

    state, _ = StableDiffusionPipeline.lora_state_dict(directory, weight_name=LORA_WEIGHTS)
    state = convert_unet_state_dict_to_peft({k.removeprefix("unet."): v for k, v in state.items()})
    result = set_peft_model_state_dict(unet, state, adapter_name="default")
    if result.unexpected_keys:
        raise UserError(f"{directory}: LoRA keys do not fit this UNet ({result.unexpected_keys[:3]} ...)")


def _load_safetensors_dir(directory: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for f in sorted(directory.glob("*.safetensors")):
        state.update(load_file(str(f)))
    return state


def save_checkpoint(acc, model, optimizer, lr_sched, gen: torch.Generator, step: int, cfg: TrainConfig) -> Path:
    """Write `checkpoint-<step>` atomically, then drop all but the last `keep_last`."""
    final = cfg.output_dir / f"checkpoint-{step}"
    tmp = cfg.output_dir / f".tmp-checkpoint-{step}"
    inner = acc.unwrap_model(model)
    acc.wait_for_everyone()
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        if inner.sib is not None:  # text conditioning has no SIB
            inner.sib.save(tmp / "sib")
        if cfg.mode == "lora":
            _save_lora(inner.unet, tmp)
        elif cfg.mode == "full":
            inner.unet.save_pretrained(tmp / "unet")
        (tmp / "train_config.json").write_text(cfg.model_dump_json(indent=2))
        scaler = acc.scaler.state_dict() if acc.scaler is not None else None
        state = {"step": step, "optimizer": optimizer.state_dict(), "lr_scheduler": lr_sched.state_dict()}
        torch.save({**state, "scaler": scaler}, tmp / "training_state.pt")
    acc.wait_for_everyone()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    rng = {"generator": gen.get_state(), "torch": torch.get_rng_state(), "cuda": cuda}
    torch.save(rng, tmp / f"rng-{acc.process_index}.pt")
    acc.wait_for_everyone()
    if acc.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in checkpoints(cfg.output_dir)[: -cfg.keep_last] if cfg.keep_last else []:
            shutil.rmtree(old)
    acc.wait_for_everyone()
    return final


def load_checkpoint(path: Path, acc, model, optimizer, lr_sched, gen: torch.Generator, cfg: TrainConfig) -> int:
    """Restore weights, optimiser, schedule, scaler and RNG from a checkpoint; return its step."""
    from safetensors.torch import load_file

    inner = acc.unwrap_model(model)
    if inner.sib is not None:
        inner.sib.load_state_dict(load_file(str(path / "sib" / WEIGHTS_NAME)))
    if cfg.mode == "lora":
        _load_lora(inner.unet, path)
    elif cfg.mode == "full":
        inner.unet.load_state_dict(_load_safetensors_dir(path / "unet"))
    state = torch.load(path / "training_state.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    lr_sched.load_state_dict(state["lr_scheduler"])
    if acc.scaler is not None and state["scaler"] is not None:
        acc.scaler.load_state_dict(state["scaler"])
    rng_file = path / f"rng-{acc.process_index}.pt"
    if rng_file.is_file():  # absent when resuming on more processes than saved: fresh noise streams then
        rng = torch.load(rng_file, map_location="cpu", weights_only=True)
        gen.set_state(rng["generator"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
    return int(state["step"])


def _data(cfg: TrainConfig, acc, vae, vae_label: str, speech: SpeechFrontEnd):
    """The training rows (one dataset, or a mixture) and their batch sampler; VAE latents cached first."""
    from voxemoset.train.data import EpochBatches, SpeechImageDataset, load_rows
    from voxemoset.train.encode import cache_latents
    from voxemoset.train.encoders import TensorStore
    from voxemoset.train.mixture import MixtureDataset, WeightedBatches, mixture_weights

    mixture, parts = cfg.datasets is not None, []
    for k, src in enumerate(cfg.sources):
        with acc.main_process_first():
            rows = load_rows(src.path, src.split, cfg.cache / "arrow", cfg.limit)
            latents = None
            if cfg.cache_latents:
                name = f"latents-{src.label}-{src.split}" if mixture else f"latents-{src.split}"
                folder = cfg.cache / f"{name}-{cfg.resolution}"
                if acc.is_main_process:
                    cache_latents(rows, vae, folder, cfg.resolution, cfg.batch_size, vae_label)
                latents = TensorStore(folder)
        store = speech.store(k)  # None: the rows carry their audio (speech) or no speech (text)
        parts.append(SpeechImageDataset(rows, cfg.resolution, store, latents, speech=cfg.conditioning == "speech"))
    rank, world = acc.process_index, acc.num_processes
    if not mixture:
        return parts[0], EpochBatches(len(parts[0]), cfg.batch_size, cfg.seed, rank, world)
    dataset = MixtureDataset(parts, [s.label for s in cfg.sources])
    weights = mixture_weights(dataset.sizes, [s.weight for s in cfg.sources])
    sampler = WeightedBatches(dataset.sizes, weights, cfg.batch_size, cfg.seed, rank, world)
    return dataset, sampler


def _model(cfg: TrainConfig, sd, in_dim: int | None, device, weight_dtype: torch.dtype) -> SpeechToImage:
    """SIB + UNet (speech), or the frozen text encoder + UNet (text baseline)."""
    if cfg.conditioning == "text":
        from voxemoset.train.text import TextToImage, load_text_encoder

        text_encoder, tokenizer = load_text_encoder(sd.path)
        _set_trainable(sd, cfg, device, weight_dtype)
        text_encoder.to(device, dtype=weight_dtype)
        return TextToImage(text_encoder, tokenizer, sd.unet, sd.vae, sd.scheduler, cfg.cond_dropout)
    spec = SIBSpec(in_dim=in_dim, out_dim=sd.unet.config.cross_attention_dim, **cfg.sib.model_dump())
    sib = SIB(spec)
    _set_trainable(sd, cfg, device, weight_dtype)
    return SpeechToImage(sib, sd.unet, sd.vae, sd.scheduler, cfg.cond_dropout)


def _set_trainable(sd, cfg: TrainConfig, device: torch.device, weight_dtype: torch.dtype) -> None:
    """Freeze the VAE (and the UNet unless mode is full); frozen weights go to `weight_dtype`; add LoRA."""
    sd.vae.requires_grad_(False).eval().to(device)
    sd.unet.requires_grad_(cfg.mode == "full").to(device)
    if weight_dtype != torch.float32:  # frozen weights in half precision: half the memory, faster matmuls
        sd.vae.to(dtype=weight_dtype)
        if cfg.mode != "full":
            sd.unet.to(dtype=weight_dtype)
    if cfg.mode == "lora":
        add_lora(sd.unet, cfg.lora_rank, cfg.lora_alpha)
        for p in sd.unet.parameters():
            if p.requires_grad:  # LoRA weights train in fp32 on top of the half-precision base
                p.data = p.data.float()
    if cfg.gradient_checkpointing:
        sd.unet.enable_gradient_checkpointing()


def _accelerator(cfg: TrainConfig):
    """The Accelerator, refusing a launch whose processes would not join: without a GPU, accelerate runs each of
    torchrun's processes alone unless ACCELERATE_USE_CPU is set, and N copies of one run would share a folder."""
    from accelerate import Accelerator
    from accelerate.utils import GradientAccumulationPlugin

    # Our sampler's accumulation windows run across epochs: the end of an epoch is no optimiser step (and a plugin,
    # unlike gradient_accumulation_steps=, is not overridden by ACCELERATE_GRADIENT_ACCUMULATION_STEPS).
    accumulation = GradientAccumulationPlugin(num_steps=cfg.grad_accum, sync_with_dataloader=False)
    acc = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_plugin=accumulation)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and acc.num_processes == 1:  # (mpirun sets no WORLD_SIZE: only this case is checked)
        raise UserError(
            f"the launcher started {launched} processes but accelerate joined {acc.num_processes}: "
            "on a machine without a GPU set ACCELERATE_USE_CPU=1 (they then train on the CPU with gloo)"
        )
    return acc


def _trace_rows(trace, step: int, micro: int, batch: dict) -> None:
    """One line per micro-batch: the rows this rank trains on (`<dataset>/<id>` in a mixture: ids may collide)."""
    ids = batch["id"]
    if "source" in batch:
        ids = [f"{source}/{row}" for source, row in zip(batch["source"], ids, strict=True)]
    trace.write(json.dumps({"step": step, "micro": micro, "ids": ids}) + "\n")
    trace.flush()


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def train(cfg: TrainConfig, resume: str | None = None, progress: bool = False) -> TrainResult:
    """Run (or resume) training until `cfg.max_steps`; checkpoints land in `cfg.output_dir`."""
    from accelerate.utils import set_seed
    from torch.utils.data import DataLoader

    from voxemoset.train.data import collate
    from voxemoset.train.frontend import load_front_end

    acc = _accelerator(cfg)
    set_seed(cfg.seed)  # the same SIB/LoRA initialisation on every rank
    torch.backends.cuda.matmul.allow_tf32 = True
    weight_dtype = DTYPES[cfg.mixed_precision]  # frozen weights live in it; trained weights stay fp32
    speech_dtype = weight_dtype if acc.device.type == "cuda" else torch.float32

    sd = load_diffusion(cfg.pretrained)
    speech = load_front_end(cfg, acc, speech_dtype)
    model = _model(cfg, sd, speech.width, acc.device, weight_dtype)
    dataset, sampler = _data(cfg, acc, sd.vae, str(sd.path / "vae"), speech)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=cfg.num_workers,
        pin_memory=acc.device.type == "cuda",
    )

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps, weight_decay=cfg.weight_decay
    )
    warmup = cfg.lr_warmup_steps
    lr_sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / (warmup + 1)))
    model, optimizer = acc.prepare(model, optimizer)
    # Noise, timesteps and condition dropout all come from this generator: one stream per rank, saved in checkpoints.
    gen = torch.Generator(acc.device).manual_seed(cfg.seed * 1_000_003 + acc.process_index)

    step = 0
    start = find_checkpoint(cfg.output_dir, resume) if resume else None
    if start is not None:
        step = load_checkpoint(start, acc, model, optimizer, lr_sched, gen, cfg)
    elif resume and acc.is_main_process:
        print(f"no checkpoint in {cfg.output_dir}: starting a new run", file=sys.stderr)
    result = TrainResult(step=step, checkpoint=start, main_process=acc.is_main_process)
    if step >= cfg.max_steps:
        return result

    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    log = open(cfg.output_dir / "log.jsonl", "a") if acc.is_main_process else None  # noqa: SIM115
    trace = open(cfg.output_dir / f"rows-{acc.process_index}.jsonl", "a") if cfg.trace_rows else None  # noqa: SIM115
    if acc.is_main_process:
        trainable = count_parameters(acc.unwrap_model(model))
        print(f"training {cfg.mode}: {trainable / 1e6:.2f}M trainable parameters, {len(dataset)} rows", file=sys.stderr)
    bar = None
    if progress and acc.is_main_process:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.max_steps, initial=step, desc="train", unit="step")

    model.train()
    # Micro-batches consumed so far: fixes the data position on resume. Checkpoints fall on optimiser steps, so
    # accelerate's own count (from 0 in a new Accelerator) starts each accumulation window where this one does.
    micro = step * cfg.grad_accum
    window, window_start, running = [], time.perf_counter(), torch.zeros((), device=acc.device)
    while step < cfg.max_steps:
        epoch, skip = divmod(micro, sampler.per_epoch)
        sampler.set_position(epoch, skip)
        for batch in loader:
            if trace is not None:
                _trace_rows(trace, step + 1, micro, batch)
            batch = speech.frames(_to_device(batch, acc.device))
            for name in batch.get("source", []):
                result.samples[name] = result.samples.get(name, 0) + 1
            with acc.accumulate(model):  # gradients are all-reduced on a window's last micro-batch only
                loss = model(batch, gen)
                acc.backward(loss)  # divides by grad_accum itself
                running += loss.detach() / cfg.grad_accum  # the step's loss: the mean over its micro-batches
                if acc.sync_gradients and cfg.max_grad_norm:
                    acc.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()  # the prepared optimiser steps (and zero_grad clears) only when sync_gradients
                optimizer.zero_grad(set_to_none=True)
            micro += 1
            if not acc.sync_gradients:  # no optimiser step yet
                continue
            lr_sched.step()  # not prepared: accelerate would step it once per process
            step += 1
            value = acc.reduce(running, "mean").item()
            running.zero_()
            result.losses.append(value)
            window.append(value)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}")
            if log is not None and (step % cfg.log_every == 0 or step == cfg.max_steps):
                elapsed = time.perf_counter() - window_start
                images = len(window) * cfg.batch_size * cfg.grad_accum * acc.num_processes
                entry = {"step": step, "loss": sum(window) / len(window), "lr": lr_sched.get_last_lr()[0]}
                log.write(json.dumps({**entry, "images_per_s": images / max(elapsed, 1e-9)}) + "\n")
                log.flush()
                window, window_start = [], time.perf_counter()
            if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
                result.checkpoint = save_checkpoint(acc, model, optimizer, lr_sched, gen, step, cfg)
            if step >= cfg.max_steps:
                break
    result.step = step
    if bar is not None:
        bar.close()
    for f in (log, trace):
        if f is not None:
            f.close()
    acc.end_training()
    return result
