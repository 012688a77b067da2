"""The emotion lexicon's and visible-expression list's locations, reading the prompt and lexicon files, and the content hash that keys the stage.

The prompt's location is shared (voxemoset.resources.prompt_path): the dataset card records the prompt too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from voxemoset.errors import UserError
from voxemoset.resources import manifests_dir

if TYPE_CHECKING:
    from voxemoset.config import CaptionsConfig


def default_lexicon() -> Path:
    """The emotion word list, `manifests/emotion_lexicon.txt`."""
    return manifests_dir() / "emotion_lexicon.txt"


def lexicon_path(cfg: CaptionsConfig) -> Path:
    """The emotion lexicon in use."""
    return Path(cfg.lexicon) if cfg.lexicon else default_lexicon()


def expressions_path(cfg: CaptionsConfig) -> Path | None:
    """The visible-expression word list when those words are banned, else None."""
    if cfg.visible_expressions == "allowed":
        return None
    return Path(cfg.expressions) if cfg.expressions else manifests_dir() / "visible_expressions.txt"


def read_text(path: Path, key: str) -> str:
    """A required text file, or one clear error naming the config key."""
    if not path.is_file():
        raise UserError(f"{key}: file not found: {path}")
    return path.read_text()


def sha256_text(text: str) -> str:
    """sha256 of a text, so editing the prompt or lexicon re-keys the stage."""
    return hashlib.sha256(text.encode()).hexdigest()
