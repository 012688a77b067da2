"""The demo chain at test size, built in the test's own process: what the flow and CLI tests compare their builds to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from voxemoset.config import load_config
from voxemoset.demo import write_demo_inputs
from voxemoset.stages import BUILD_CHAIN, get_stage
from voxemoset.store.digest import build_digest
from voxemoset.store.runner import run_stage, stage_dir


def small_demo(root: Path, limit_per_split: int, **sections: dict[str, Any]) -> tuple[Path, Path]:
    """Demo inputs under `root` with one image per shard and `limit_per_split` images per split, each of
    `sections` merged into its config section: (the config's path, the folder the direct build goes to)."""
    cfg_path = write_demo_inputs(root)
    data = yaml.safe_load(cfg_path.read_text())
    data["images"].update(shard_size=1, limit_per_split=limit_per_split)
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    cfg_path.write_text(yaml.safe_dump(data))
    return cfg_path, root / "direct"


def build_direct(cfg_path: Path, out: Path | None = None) -> str:
    """Every stage of the chain in this process (the threads runner's bytes); the build's digest."""
    cfg = load_config(cfg_path, {"out": str(out)} if out else None)
    for name in BUILD_CHAIN:
        run_stage(get_stage(name), cfg, cfg.out)
    return build_digest(cfg.out)


def markers(out: Path, stages: tuple[str, ...] = BUILD_CHAIN) -> dict[str, int]:
    """Finished shards per stage."""
    return {s: len(list((stage_dir(out, s) / "_done").glob("*.json"))) for s in stages}
