"""`voxemoset demo`: every stage built so far, on miniature corpora built in code, on the CPU."""

from __future__ import annotations

from pathlib import Path

import yaml
from rich.console import Console

from voxemoset.config import load_config
from voxemoset.fixtures.emoset import build_emoset_tree
from voxemoset.fixtures.speech import build_speech_corpora
from voxemoset.stages import get_stage
from voxemoset.store.runner import run_stage

DEMO_STAGES = ("images",)


def write_demo_inputs(out: Path) -> Path:
    """Build the miniature corpora under `out/fixtures` and a config that points at them."""
    fixtures = out / "fixtures"
    if not (fixtures / "EmoSet" / "train.json").is_file():
        build_emoset_tree(fixtures / "EmoSet")
    if not (fixtures / "speech" / ".complete").is_file():
        build_speech_corpora(fixtures / "speech")
        (fixtures / "speech" / ".complete").touch()
    speech = fixtures / "speech"
    config = {
        "out": str(out),
        "sources": {
            "emoset": str(fixtures / "EmoSet"),
            "cremad": str(speech / "CREMA-D"),
            "ravdess": str(speech / "RAVDESS"),
            "mead": str(speech / "MEAD"),
        },
        "images": {"shard_size": 16},
    }
    path = out / "demo.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def summarise_speech_sources(cfg, console: Console) -> None:
    """Print what the reference readers find (the `references` stage builds on them)."""
    from collections import Counter

    from voxemoset.sources.cremad import scan_cremad
    from voxemoset.sources.mead import scan_mead
    from voxemoset.sources.ravdess import scan_ravdess

    for corpus, scan_fn, root in (
        ("cremad", scan_cremad, cfg.sources.cremad),
        ("ravdess", scan_ravdess, cfg.sources.ravdess),
        ("mead", scan_mead, cfg.sources.mead),
    ):
        scan = scan_fn(root)
        splits = Counter(c.split for c in scan.items)
        problems = Counter(p.reason for p in scan.problems)
        console.print(
            f"[bold]{corpus}[/]: {len(scan.items)} usable clips ({splits['train']} train, {splits['test']} test); "
            f"problems: {dict(problems)}"
        )


def run_demo(out: Path, console: Console | None = None) -> dict:
    """Build fixtures, run the built stages, print where the output is; return the stage summaries."""
    console = console or Console()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(write_demo_inputs(out))
    summaries = {}
    summarise_speech_sources(cfg, console)
    for name in DEMO_STAGES:
        s = run_stage(get_stage(name), cfg, cfg.out)
        summaries[name] = s
        rejects = ", ".join(f"{k} {v}" for k, v in s["rejects"].items()) or "none"
        console.print(f"[bold]{name}[/]: {s['rows']} rows in {s['shards']} shards; rejects: {rejects}")
    console.print(f"demo output: {out} (config {out / 'demo.yaml'}, manifest {out / 'manifest.json'})")
    return summaries
