"""`voxemoset demo`: every stage built so far, on miniature corpora and tiny models built in code, on the CPU."""

from __future__ import annotations

from pathlib import Path

import yaml
from rich.console import Console

from voxemoset.chain import run_graph
from voxemoset.config import load_config
from voxemoset.fixtures.emoset import build_emoset_tree
from voxemoset.fixtures.speech import build_speech_corpora
from voxemoset.report import cremad_inputs, require_complete, write_report
from voxemoset.stages import get_stage
from voxemoset.store.runner import run_stage
from voxemoset.summary import Clock, print_summary, write_summary


def _once(marker: Path, build) -> None:
    """Build fixtures or models once per demo folder (a marker written last makes a killed build redo it)."""
    if not marker.is_file():
        build()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()


def demo_config(out: Path) -> dict:
    """The demo's config: miniature corpora, tiny random models, thresholds a random model can meet; with preset
    `paper` (see `with_paper_recipe`), every setting the paper states as `configs/paper.yaml` states it."""
    fixtures, models = out / "fixtures", out / "models"
    speech = fixtures / "speech"
    return {
        "out": str(out),
        "sources": {
            "emoset": str(fixtures / "EmoSet"),
            "cremad": str(speech / "CREMA-D"),
            "ravdess": str(speech / "RAVDESS"),
            "mead": str(speech / "MEAD"),
        },
        "images": {"shard_size": 16},
        # A random LLaVA cannot write valid captions; the fixture builder's true descriptions of its
        # pictures go through the same validation instead.
        "captions": {"backend": "table", "table": str(fixtures / "EmoSet" / "fixture_captions.jsonl")},
        "references": {"shard_size": 16, "whisper": {"model": str(models / "whisper"), "max_new_tokens": 12}},
        "speech": {
            "checkpoint": str(models / "f5tts"),
            "vocoder": str(models / "vocos"),
            "device": "cpu",
            "nfe_step": 8,
            "batch_size": 8,
        },
        # A random emotion model hears one emotion in everything: record its verdicts, do not gate on them.
        "gates": {
            "emotion_model": str(models / "emotion2vec"),
            "require_emotion": False,
            "max_attempts": 2,
            "whisper": {"model": str(models / "whisper"), "max_new_tokens": 12},
            "max_wer": None,  # a random Whisper transcribes nonsense: record its WER, do not gate on it
        },
        "report": {"clip_model": str(models / "clip")},
    }


def with_paper_recipe(config: dict) -> dict:
    """`config` with every setting the paper states set as `configs/paper.yaml` sets it."""
    from voxemoset.departures import STATED, paper_config, paper_prompt

    paper = paper_config()
    for key in STATED:
        section, name = key.split(".")
        value = getattr(getattr(paper, section), name)
        if key == "captions.prompt":  # the preset's path is relative to the checkout, the demo runs anywhere
            value = str(paper_prompt(paper))
        config.setdefault(section, {})[name] = list(value) if isinstance(value, list | tuple) else value
    return config


def write_demo_inputs(out: Path, preset: str | None = None) -> Path:
    """Build the miniature corpora, the tiny models and a config pointing at them; return the config path."""
    from voxemoset.models.tiny import write_all

    out = Path(out)
    fixtures = out / "fixtures"
    _once(fixtures / "EmoSet" / ".complete", lambda: build_emoset_tree(fixtures / "EmoSet"))
    _once(fixtures / "speech" / ".complete", lambda: build_speech_corpora(fixtures / "speech"))
    _once(out / "models" / ".complete", lambda: write_all(out / "models"))
    if not (out / "models" / "clip" / "config.json").is_file():  # a demo folder made before the report had a CLIP
        from voxemoset.models.tiny.clip import write_clip

        write_clip(out / "models" / "clip")
    path = out / "demo.yaml"
    config = demo_config(out)
    if preset == "paper":
        config = with_paper_recipe(config)
        # The paper states the emotion filter, not its confidence: a random emotion model is never confident, so
        # the demo keeps each clip it hears as intended, however unsure.
        config["gates"]["min_emotion_conf"] = 0.0
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def summarise_speech_sources(cfg, console: Console) -> None:
    """Print what the reference readers find."""
    from collections import Counter

    from voxemoset.corpora import SPEECH_CORPORA, scan_corpus

    for corpus in SPEECH_CORPORA:
        scan = scan_corpus(corpus, cfg.sources)
        splits = Counter(c.split for c in scan.items)
        problems = Counter(p.reason for p in scan.problems)
        console.print(
            f"[bold]{corpus}[/]: {len(scan.items)} usable clips ({splits['train']} train, {splits['test']} test); "
            f"problems: {dict(problems)}"
        )


def run_demo(out: Path, console: Console | None = None, preset: str | None = None) -> dict:
    """Build fixtures and tiny models, run the built stages, write the report, print where both are; return the
    stage summaries."""
    console = console or Console()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(write_demo_inputs(out, preset))
    summarise_speech_sources(cfg, console)
    clock = Clock()
    summaries = run_graph(
        lambda name: run_stage(get_stage(name), cfg, cfg.out), side_by_side=cfg.orchestration.parallel_stages
    )
    print_summary(write_summary(out, summaries, clock.started, clock.wall_s), console)
    console.print(f"demo output: {out} (config {out / 'demo.yaml'}, manifest {out / 'manifest.json'})")
    folder = write_report(out, settings=cfg.report, cremad=cremad_inputs(cfg))
    require_complete(folder)
    console.print(f"report: {folder / 'index.html'} (Table 1 in {folder / 'report.md'})")
    return summaries
