"""Progress of the running stages, for the commands a person watches (`build`, `stage`, `corpus`, `demo`).

On a terminal, one live line per running stage (rich): shards done/total, items so far, items/s and ETA. Anywhere
else (CI, nohup, a pipe), one plain line per finished shard naming its stage, shard, items and rate. Off unless a
command turns it on (`enable`): library callers and served deployments print nothing (the Prefect UI has its
progress artifacts).

Items are what a shard handled: its rows kept plus its rejects. The ETA is the remaining shards times the mean
time of the shards finished so far in this run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console

_LOCK = threading.Lock()
_BOARD: Board | None = None


def shard_items(marker: dict | None) -> int:
    """Rows kept plus rejects recorded by a shard's marker (counted as the manifest counts them)."""
    from voxemoset.store.manifest import marker_counts

    counts = marker_counts([marker or {}])
    return counts["rows"] + sum(counts["rejects"].values())


@dataclass
class Feed:
    """One stage's run: what is done of the shards it computes."""

    stage: str
    total: int
    board: Board | None = None
    done: int = 0
    items: int = 0
    model_load_s: float = 0.0  # loads a stage makes on a shard's first need (the gates' scorers) show in its stats
    started: float = field(default_factory=time.monotonic)
    task: int | None = None

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return self.items / self.elapsed

    @property
    def eta_s(self) -> float | None:
        return None if not self.done else (self.total - self.done) * self.elapsed / self.done

    def describe(self) -> str:
        """The stage's progress in one line (the Prefect UI's progress artifact shows it)."""
        eta = f", ETA {self.eta_s:.0f} s" if self.eta_s is not None and self.done < self.total else ""
        return f"{self.stage}: {self.done}/{self.total} shards, {self.items} items, {self.rate:.1f} items/s{eta}"

    def shard(self, name: str, marker: dict | None) -> None:
        """A shard finished (its marker written)."""
        items = shard_items(marker)
        with _LOCK:
            self.done += 1
            self.items += items
            stats = (marker or {}).get("stats")
            if isinstance(stats, dict) and isinstance(stats.get("model_load_s"), int | float):
                self.model_load_s += float(stats["model_load_s"])
            if self.board is not None:
                self.board.update(self, name, items)


class Board:
    """The process's display: a rich Progress on a terminal, plain lines otherwise."""

    def __init__(self, console: Console):
        self.console = console
        self.live = None
        self.running = 0
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.live = Progress(
                TextColumn("[bold]{task.description}[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("shards"),
                TextColumn("{task.fields[items]} items, {task.fields[rate]} items/s"), TimeRemainingColumn(),
                console=console,
            )  # fmt: skip

    def start(self, feed: Feed) -> None:
        if self.live is None:
            return
        with _LOCK:
            if not self.running:
                self.live.start()
            self.running += 1
            feed.task = self.live.add_task(feed.stage, total=feed.total, items=0, rate="0.0")

    def update(self, feed: Feed, shard: str, items: int) -> None:
        if self.live is not None and feed.task is not None:
            self.live.update(feed.task, completed=feed.done, items=feed.items, rate=f"{feed.rate:.1f}")
            return
        eta = f", ETA {feed.eta_s:.0f} s" if feed.eta_s is not None and feed.done < feed.total else ""
        self.console.print(
            f"{feed.stage}: shard {shard} done ({feed.done}/{feed.total}), {items} items, {feed.rate:.1f} items/s{eta}",
            highlight=False,
            soft_wrap=True,
        )

    def stop(self, feed: Feed) -> None:
        if self.live is None or feed.task is None:
            return
        with _LOCK:
            self.running -= 1
            if not self.running:
                self.live.stop()


def enable(console: Console) -> None:
    """Show progress on `console` from now on in this process."""
    global _BOARD
    _BOARD = Board(console)


def disable() -> None:
    global _BOARD
    _BOARD = None


@contextmanager
def stage_feed(stage: str, todo: int) -> Iterator[Feed]:
    """The feed of one stage's run of `todo` shards (shown only when enabled and there is work)."""
    board = _BOARD if todo else None
    feed = Feed(stage, todo, board)
    if board is not None:
        board.start(feed)
    try:
        yield feed
    finally:
        if board is not None:
            board.stop(feed)
