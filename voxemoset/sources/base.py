"""What every source reader returns: the usable items, plus each problem it met, never silently dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """One input a reader could not use: `source` is the file or key, `reason` a short constant."""

    source: str
    reason: str
    detail: str = ""


@dataclass
class Scan(Generic[T]):
    """A reader's result: items it can use, problems it reports, and counts it filtered by design."""

    items: list[T] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    filtered: dict[str, int] = field(default_factory=dict)

    def filter_out(self, label: str) -> None:
        """Count an input left out on purpose (e.g. an emotion VoxEmoset does not use)."""
        self.filtered[label] = self.filtered.get(label, 0) + 1
