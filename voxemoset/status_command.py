"""`voxemoset status -c CONFIG` (and `build --dry-run`): what a build would do, computing nothing (see status.py).
Only typer is imported until the command runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def show(cfg, as_json: bool = False) -> None:
    """Print every stage's status: a table and what changed, or JSON."""
    from rich.console import Console

    from voxemoset.status import build_status, print_status

    statuses = build_status(cfg)
    if as_json:
        typer.echo(json.dumps([s.as_dict() for s in statuses], indent=2))
    else:
        print_status(statuses, Console(soft_wrap=True).print)


def status(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config file")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="output directory (overrides the config's `out`)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the status as JSON")] = False,
) -> None:
    """Per stage: shards done, pending and stale (with the settings, models or inputs that changed them) and an
    estimate of the rebuild from recorded shard times; computes nothing."""
    from voxemoset.config import load_config

    show(load_config(config, {"out": str(out_dir)} if out_dir else None), as_json)
