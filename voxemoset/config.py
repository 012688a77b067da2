"""One YAML config, validated with pydantic: unknown keys are errors, paths are checked when used."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voxemoset.errors import UserError


class Strict(BaseModel):
    """Base for config sections: unknown keys rejected, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourcesConfig(Strict):
    """Where the source corpora live, each in its native layout."""

    emoset: Path | None = None
    cremad: Path | None = None
    ravdess: Path | None = None
    mead: Path | None = None


class ImagesConfig(Strict):
    """The `images` stage: validation limits and shard size."""

    shard_size: int = Field(1000, ge=1, description="images per output shard")
    max_pixels: int = Field(64_000_000, ge=1, description="larger images are rejected (decompression bombs)")
    max_file_bytes: int = Field(64 * 2**20, ge=1, description="larger files are rejected unread")
    min_side: int = Field(32, ge=1, description="images with a smaller side are rejected")
    limit_per_split: int | None = Field(None, ge=1, description="keep only the first N images per split (trials)")


class OrchestrationConfig(Strict):
    """How Prefect runs shard tasks: threads in this process, or a Ray cluster (prefect-ray)."""

    task_runner: Literal["threads", "ray"] = "threads"
    max_workers: int = Field(2, ge=1, description="parallel shard tasks for CPU stages (threads runner)")
    ray_address: str | None = Field(
        None, description="existing cluster, e.g. ray://head:10001; None starts a local one"
    )
    ray_num_cpus: int | None = Field(None, ge=1, description="CPUs of a local Ray cluster")
    gpus_per_task: float = Field(1.0, ge=0, description="GPUs a GPU-stage shard task asks Ray for")
    task_retries: int = Field(2, ge=0, description="retries of a shard task after a transient error")


class Config(Strict):
    """The whole build."""

    out: Path = Path("runs/voxemoset")
    sources: SourcesConfig = SourcesConfig()
    images: ImagesConfig = ImagesConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"override {dotted}: {part} is not a section")
    node[leaf] = value


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(x) for x in e["loc"]) or "config"
        parts.append(f"{where}: {e['msg'].lower()}")
    return "; ".join(parts)


def parse_config(data: dict, overrides: dict[str, Any] | None = None, origin: str = "config") -> Config:
    """Validate config data, after applying dotted-key overrides such as {"images.shard_size": 10}."""
    data = dict(data or {})
    for k, v in (overrides or {}).items():
        _set_dotted(data, k, v)
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise UserError(f"{origin}: {_describe(e)}") from None


def load_config(path: Path | str, overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate a YAML config; every mistake becomes one clear UserError line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config keys at the top level")
    return parse_config(data, overrides, origin=str(path))


def require_dir(path: Path | None, key: str) -> Path:
    """A configured folder that must exist, or one clear error naming the config key."""
    if path is None:
        raise UserError(f"{key} is not set in the config")
    if not Path(path).is_dir():
        raise UserError(f"{key}: folder not found: {path}")
    return Path(path)
