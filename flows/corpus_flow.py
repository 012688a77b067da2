"""The `corpus` flow: a human-read corpus (SpokenCOCO, Flickr8kAudio) written under <out>/corpora/<name>/ with its
shards as tasks on the configured runner, then its card; `voxemoset corpus` does the same in one process."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.stage_flows import execute_runner
from voxemoset.config import load_config
from voxemoset.corpora import HUMAN_READ, check_name
from voxemoset.corpora.export.card import CARD
from voxemoset.corpora.export.writer import corpus_runner
from voxemoset.store.lock import out_lock


@flow(name="corpus", log_prints=True)
def corpus_flow(name: str, config_path: str, overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """Write corpus `name` (spokencoco | flickr8k) in the published row layout; finished shards are skipped."""
    check_name(name, HUMAN_READ)
    cfg = load_config(config_path, overrides)
    with out_lock(cfg.out):
        runner = corpus_runner(name, cfg)
        summary = execute_runner(runner, cfg, force)  # the runner's finalize writes the card
    print(f"card: {runner.dir / CARD}")
    return summary
