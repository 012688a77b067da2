"""Where the repo's data folders are: `manifests/` (splits, tables, lexicon) and `prompts/`, and the prompt in use.

They sit at the top of the checkout (the README's Layout), beside the package, which is installed
editable by scripts/setup.sh and copied whole into the Docker image.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from voxemoset.errors import UserError

if TYPE_CHECKING:
    from voxemoset.config import CaptionsConfig

REPO = Path(__file__).resolve().parents[1]


def data_dir(name: str) -> Path:
    """`manifests`, `prompts` or `configs`: from $VOXEMOSET_<NAME> if set, else beside the package."""
    env = os.environ.get(f"VOXEMOSET_{name.upper()}")
    path = Path(env) if env else REPO / name
    if not path.is_dir():
        raise UserError(
            f"{name}/ not found at {path}: install voxemoset from a checkout (pip install -e .) "
            f"or set VOXEMOSET_{name.upper()} to the folder"
        )
    return path


def manifests_dir() -> Path:
    """The top-level `manifests/` folder."""
    return data_dir("manifests")


def prompts_dir() -> Path:
    """The top-level `prompts/` folder."""
    return data_dir("prompts")


def default_prompt() -> Path:
    """The versioned captioning prompt, `prompts/caption.txt`."""
    return prompts_dir() / "caption.txt"


def prompt_path(cfg: CaptionsConfig) -> Path:
    """The captioning prompt in use; the captions stage asks with it and the dataset card records it."""
    return Path(cfg.prompt) if cfg.prompt else default_prompt()
