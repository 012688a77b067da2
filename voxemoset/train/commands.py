"""The training side's commands (`encode`, `train`, `generate`, `evaluate`), registered on voxemoset's CLI. Only
typer and rich load until a command runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

out = Console(soft_wrap=True)


def encode(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config file")],
    split: Annotated[str | None, typer.Option("--split", help="default: the config's training split")] = None,
) -> None:
    """Precompute every training dataset's Whisper frame embeddings (SONAR: prints its script's command)."""
    from voxemoset.train.config import TrainConfig, load_yaml
    from voxemoset.train.mixture import encode_sources

    for folder in encode_sources(load_yaml(config, TrainConfig), split, progress=True):
        out.print(str(folder), highlight=False)


def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config file")],
    resume: Annotated[
        str | None, typer.Option("--resume", help="`latest` or a checkpoint folder: continue that run")
    ] = None,
) -> None:
    """Fit the SIB and the latent-diffusion UNet from dataset shards."""
    from voxemoset.train import train_from_yaml

    result = train_from_yaml(config, resume=resume, progress=sys.stderr.isatty())
    if result.main_process:  # one line per run, not one per process
        out.print(f"step {result.step}; last checkpoint: {result.checkpoint}")


def generate(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="trained checkpoint folder")],
    speech: Annotated[Path, typer.Option("--speech", help="a speech file (wav)")],
    out_png: Annotated[Path, typer.Option("--out", help="PNG to write")],
    guidance_scale: Annotated[float, typer.Option("--guidance-scale", help="classifier-free guidance")] = 7.5,
    steps: Annotated[int, typer.Option("--steps", help="denoising steps (DDIM)")] = 50,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    encoder: Annotated[
        str | None, typer.Option("--encoder", help="speech encoder location, if not the one the run used")
    ] = None,
) -> None:
    """Generate an image from a speech file with a trained checkpoint."""
    from voxemoset.train.generate import generate as generate_png

    path = generate_png(checkpoint, speech, out_png, guidance_scale, steps, seed, encoder_model=encoder)
    out.print(f"wrote {path}")


def evaluate(config: Annotated[Path, typer.Option("--config", "-c", help="YAML config file")]) -> None:
    """The paper's protocol: FID, CLIPScore and Emo-A of the speech model and the baselines (one table)."""
    from voxemoset.train import evaluate_from_yaml
    from voxemoset.train.eval.table import markdown

    table = evaluate_from_yaml(config, progress=sys.stderr.isatty())
    out.print(markdown(table), highlight=False, markup=False)
