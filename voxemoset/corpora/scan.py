"""What every source reader returns: the usable items (EmoSet entries, speech `Clip`s), plus each problem it met."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Problem:
    """One input a reader could not use: `source` is the file or key, `reason` a short constant."""

    source: str
    reason: str
    detail: str = ""

    def __post_init__(self) -> None:
        # A file name that is not UTF-8 (surrogate-escaped by os) could not be written to the rejects table.
        object.__setattr__(self, "source", printable(self.source))
        object.__setattr__(self, "detail", printable(self.detail))


@dataclass
class Scan(Generic[T]):
    """A reader's result: items it can use, problems it reports, and counts it filtered by design."""

    items: list[T] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    filtered: dict[str, int] = field(default_factory=dict)

    def filter_out(self, label: str) -> None:
        """Count an input left out on purpose (e.g. an emotion VoxEmoset does not use)."""
        self.filtered[label] = self.filtered.get(label, 0) + 1

    def reject(self, source: object, reason: str, detail: str = "") -> None:
        """Record an input the reader cannot use, with its reason."""
        self.problems.append(Problem(str(source), reason, detail))

    def parsed(self, path: Path, parse: Callable[[Path], R], reason: str) -> R | None:
        """`parse(path)` (a corpus's file-name grammar), or None after recording why the name does not parse."""
        try:
            return parse(path)
        except ValueError as exc:
            self.reject(path, reason, str(exc))
            return None


class RootCheck:
    """Whether paths, symlinks resolved, lie under one corpus root: readers never read outside their corpus.

    Each folder is resolved once per instance (EmoSet's 236k paths sit in a handful of folders); make one per
    scan or shard, so a tree changed later is seen afresh.
    """

    def __init__(self, root: str | Path):
        self.root = str(Path(root).resolve())
        self._prefix = os.path.join(self.root, "")  # with its trailing separator: /data/a is not in /data/ab
        self._folders: dict[str, str] = {}

    def __call__(self, path: str | Path) -> bool:
        try:
            if "\x00" in os.fspath(path):
                return False  # no file has such a name; os.path would raise on some calls and not others
            head, name = os.path.split(os.fspath(path))
            if head not in self._folders:
                self._folders[head] = os.path.realpath(head or ".")
            real = os.path.join(self._folders[head], name)
            if name in ("", ".", "..") or os.path.islink(real):
                real = os.path.realpath(real)
            return real == self.root or real.startswith(self._prefix)
        except (OSError, ValueError, RuntimeError):
            return False  # a symlink loop, a NUL byte, an unreadable folder: not a path to read


def inside_root(path: str | Path, root: str | Path) -> bool:
    """Whether one `path`, symlinks resolved, lies under `root` (see RootCheck for many paths)."""
    return RootCheck(root)(path)


def printable(text: str) -> str:
    """`text` with what UTF-8 cannot hold (undecodable file-name bytes, lone surrogates) replaced."""
    return text.encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True)
class Clip:
    """A usable clip: EmoBox key, absolute path, speaker, sex, five-class emotion, text and fold-1 split.

    `source_emotion` is the corpus's own label: CREMA-D code (`ANG`), RAVDESS name (`angry`), MEAD
    folder (`angry`). `intensity` keeps each corpus's own scale (they do not line up), spelt as lower-case
    words. `sentence` is CREMA-D's sentence code (`DFA`), RAVDESS's statement (`01`) or None for MEAD;
    `transcript` is that sentence's text, None for MEAD (transcribed later by ASR).
    """

    key: str
    corpus: str
    path: str
    speaker: str
    sex: str
    emotion: str
    source_emotion: str
    intensity: str
    sentence: str | None
    transcript: str | None
    split: str

    def to_row(self) -> dict:
        """The clip as a plain dict (for tables and JSON)."""
        return asdict(self)
