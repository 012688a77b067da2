"""`voxemoset weights DIR`: the download command of every model a config uses, into DIR, and a config pointing there.

The commands are the ones the loaders name when a model is missing (each need's `locate`, asked about DIR), so
they are written in one place.
"""

from __future__ import annotations

import copy
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from voxemoset.config import parse_config, read_yaml
from voxemoset.errors import MissingWeightsError, UserError
from voxemoset.preflight.models import ModelNeed, model_needs
from voxemoset.stages import BUILD_CHAIN


@dataclass(frozen=True)
class Download:
    """One model's place under DIR and the command fetching it there (None: already there)."""

    need: ModelNeed
    target: Path
    command: str | None


def plan_downloads(config_data: dict, directory: Path) -> list[Download]:
    """Every model the config's stages (and its report) load, each placed in its own folder under `directory`."""
    cfg = parse_config(config_data)
    directory = Path(directory).expanduser().absolute()  # absolute: `dir/name` must never read as a Hub id
    plan: dict[Path, Download] = {}
    for need in model_needs(cfg, BUILD_CHAIN, report=True):
        target = directory / need.folder
        if target in plan:  # two local folders of one model (e.g. both Whispers): one download, every key
            old = plan[target]
            plan[target] = Download(replace(old.need, keys=old.need.keys + need.keys), target, old.command)
            continue
        try:
            need.locate(str(target))
            command = None
        except MissingWeightsError as e:
            command = e.command
        plan[target] = Download(need, target, command)
    return list(plan.values())


def _set(data: dict, dotted: str, value: object) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[leaf] = value


def pointed_config(config_data: dict, plan: list[Download]) -> dict:
    """The config with every model key pointing at its folder under DIR (validated)."""
    data = copy.deepcopy(config_data or {})
    for d in plan:
        for key in d.need.keys:
            _set(data, key, str(d.target))
        if "speech.checkpoint" in d.need.keys and (data.get("speech") or {}).get("vocab_file"):
            data["speech"]["vocab_file"] = None  # the vocab downloads beside the checkpoint
    parse_config(data, origin="the written config")
    return data


def _hf() -> str:
    exe = shutil.which("hf") or str(Path(sys.executable).parent / "hf")
    if not Path(exe).is_file():
        raise UserError("the `hf` command is not installed: pip install -U huggingface_hub")
    return exe


def run_downloads(plan: list[Download], log) -> None:
    """Run each pending command in turn; the first that fails stops with one line naming it."""
    hf = _hf()
    for d in plan:
        if d.command is None:
            continue
        log(f"$ {d.command}")
        argv = shlex.split(d.command)
        done = subprocess.run([hf, *argv[1:]] if argv[0] == "hf" else argv, check=False)
        if done.returncode != 0:
            raise UserError(f"download failed (exit {done.returncode}): {d.command}")


def weights(directory: Path, config: Path | None, run: bool, log) -> Path:
    """Print (or with `run`, perform) every download into `directory`; write `directory`/config.yaml; return it."""
    data = read_yaml(config) if config is not None else {}
    plan = plan_downloads(data, directory)
    if any(any(c.isspace() for c in str(d.target)) for d in plan):
        raise UserError(
            f"{directory}: a weights folder without spaces in its path, please (the commands are shell lines)"
        )
    for d in plan:
        log(f"# {d.need.label()}" + (f": already in {d.target}" if d.command is None else ""))
        if d.command is not None and not run:
            log(d.command)
    written = Path(directory) / "config.yaml"
    written.parent.mkdir(parents=True, exist_ok=True)
    written.write_text(yaml.safe_dump(pointed_config(data, plan), sort_keys=False))
    if run:
        run_downloads(plan, log)
    log(f"# config pointing at these folders: {written}")
    return written
