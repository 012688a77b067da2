"""`voxemoset corpus NAME -c CONFIG`: the typer command (registered in cli.py with `app.command("corpus")(corpus)`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def corpus(
    name: Annotated[str, typer.Argument(help="spokencoco | flickr8k")],
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config file")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="output directory (overrides the config's `out`)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="recompute every shard, finished or not")] = False,
) -> None:
    """Write a human-read corpus (SpokenCOCO with Karpathy's split, or Flickr8kAudio) as published-layout Parquet
    shards under <out>/corpora/NAME/data/, with rejects; a rerun skips finished shards."""
    from voxemoset.config import load_config
    from voxemoset.corpora import HUMAN_READ, check_name
    from voxemoset.corpora.export.card import CARD
    from voxemoset.corpora.export.writer import corpus_dir, run_corpus
    from voxemoset.quiet import announce_log

    check_name(name, HUMAN_READ)
    cfg = load_config(config, {"out": str(out_dir)} if out_dir else None)
    announce_log(cfg.out)
    summary = run_corpus(name, cfg, force=force)
    rejects = ", ".join(f"{k} {v}" for k, v in summary["rejects"].items()) or "none"
    typer.echo(
        f"{name}: {summary['rows']} utterances, {sum(summary['rejects'].values())} rejects ({rejects}); "
        f"{summary['computed']} shards computed, {summary['skipped']} skipped"
    )
    folder = corpus_dir(cfg.out, name)
    typer.echo(f"output: {folder / 'data'} (card: {folder / CARD})")
