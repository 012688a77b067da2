"""Model folders as data, never as code: tensors-only checkpoints, configs that cannot name code to run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from voxemoset.errors import CorruptWeightsError, UserError

if TYPE_CHECKING:
    import torch

# The JSON files transformers reads from a checkpoint folder; any of them may carry an `auto_map` naming code.
HF_CONFIGS = (
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer_config.json",
    "video_preprocessor_config.json",
)


def short_reason(exc: BaseException) -> str:
    """`Type: first sentence` of an exception, short enough for a one-line error."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text.split(". ")[0][:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_state_dict(path: Path, model: str, command: str) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors or torch checkpoint, unpickled as tensors only; unreadable -> CorruptWeightsError."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        # weights_only: a pickle naming any callable (os.system, ...) is refused, never run.
        return torch.load(path, map_location="cpu", weights_only=True)
    except (MemoryError, FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as exc:  # truncated zips raise OSError(EINVAL), garbage UnpicklingError/EOFError/...
        raise CorruptWeightsError(model, str(path), command, short_reason(exc)) from exc


def check_readable(path: Path, model: str, command: str) -> None:
    """Raise CorruptWeightsError if a checkpoint file cannot be read (a safetensors header check is enough)."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt"):  # validates the header against the file's length
                return
        except (MemoryError, FileNotFoundError, PermissionError, IsADirectoryError):
            raise
        except Exception as exc:
            raise CorruptWeightsError(model, str(path), command, short_reason(exc)) from exc
    read_state_dict(path, model, command)


@contextmanager
def corrupt_weights_named(files: list[Path], model: str, command: str) -> Iterator[None]:
    """If a library's loader fails, say which checkpoint file is unreadable, if one is; else let its error through.

    Checking only after a failure keeps the normal load at one read of multi-gigabyte files.
    """
    try:
        yield
    except (UserError, MemoryError):
        raise
    except Exception:
        for f in files:
            check_readable(f, model, command)
        raise


def check_hf_folder(folder: Path, model_type: str, role: str) -> None:
    """A transformers checkpoint folder whose config.json is `model_type` and whose JSON names no code to import."""
    folder = Path(folder)
    for name in HF_CONFIGS:
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{role}: {path} is not readable JSON ({short_reason(exc)})") from None
        if not isinstance(data, dict):
            raise UserError(f"{role}: {path} is not a JSON object")
        if "auto_map" in data:
            raise UserError(f"{role}: {path} names code to import (auto_map); only built-in model code is run")
        if name == "config.json" and data.get("model_type") != model_type:
            raise UserError(f"{role}: {path} has model_type {data.get('model_type')!r}, expected {model_type!r}")


def load_pretrained(model_cls, folder: Path, model_type: str, role: str, download: str, **kwargs):
    """`model_cls.from_pretrained` on a local folder that names no code: its `model_type` checked, built-in
    code only (trust_remote_code=False), and a corrupt weights file named if the load fails."""
    from voxemoset.models.resolve import weight_files

    check_hf_folder(folder, model_type, role)
    with corrupt_weights_named(weight_files(folder), role, download):
        return model_cls.from_pretrained(folder, local_files_only=True, trust_remote_code=False, **kwargs)
