"""Find a checkpoint offline: a local folder as given, or a Hub id's snapshot in the HF cache."""

from __future__ import annotations

from pathlib import Path

from voxemoset.errors import MissingWeightsError


def looks_like_path(model: str) -> bool:
    """A Hub id is exactly `org/name`; anything absolute, dotted, ~, deeper, or existing is a folder."""
    return model.startswith(("/", ".", "~")) or model.count("/") != 1 or Path(model).expanduser().exists()


def resolve_checkpoint(model: str, role: str, default_id: str, marker: str = "config.json") -> Path:
    """The folder holding `marker`, never downloading; a clear error naming the download command if absent."""
    if looks_like_path(model):
        path = Path(model).expanduser()
        if (path / marker).is_file():
            return path
        raise MissingWeightsError(role, str(path), f"hf download {default_id} --local-dir {path}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        raise MissingWeightsError(role, f"the Hugging Face cache ({model})", f"hf download {model}") from None


def model_label(model: str) -> str:
    """What rows record as the model: the Hub id, or a local folder's name (no machine paths)."""
    return Path(model).name if looks_like_path(model) else model


def redownload_command(path: Path, default_id: str) -> str:
    """How to fetch a checkpoint folder again: a Hub-cache snapshot by its repo id, any other folder by --local-dir."""
    path = Path(path)
    cache_dir = path.parent.parent.name  # <cache>/models--org--name/snapshots/<revision>
    if path.parent.name == "snapshots" and cache_dir.startswith("models--"):
        return f"hf download {cache_dir.removeprefix('models--').replace('--', '/')} --force-download"
    return f"hf download {default_id} --local-dir {path}"


def weight_files(path: Path) -> list[Path]:
    """The checkpoint files of a transformers folder (safetensors shards, or pytorch_model*.bin)."""
    return sorted(Path(path).glob("*.safetensors")) or sorted(Path(path).glob("pytorch_model*.bin"))
