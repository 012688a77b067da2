"""The account at the end of a build (as datatrove's per-step stats): per stage, items in and rows out, rejects by
their top reasons, wall time, items/s and, for model stages, the model load time; `<out>/summary.json`, a table on
the terminal and a markdown artifact of the `build` flow run.

Items in are what a stage's shards handled: rows kept plus rejects (inputs a stage leaves out by design, e.g. awe
and contentment images, are `filtered`, not rejects). Wall time and items/s cover this run's work: the items of
the shards it computed over the stage's wall time (planning, loading and finishing included).
"""

from __future__ import annotations

import time
from pathlib import Path

from voxemoset.markdown import md_table

SUMMARY = "summary.json"
TOP_REASONS = 3


def stage_summary(name: str, s: dict, loads: list[float], uses_gpu: bool) -> dict:
    """One stage's account; `loads`: the seconds of each model load logged for it in this build."""
    load_s = sum(loads) + float(s.get("shard_load_s") or 0.0)  # loaded up front, and on a shard's first need
    rejects = s.get("rejects") or {}
    seconds = float(s.get("seconds") or 0.0)
    items = int(s.get("items_computed") or 0)
    top = sorted(rejects.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
    return {
        "stage": name,
        "items_in": int(s["rows"]) + sum(rejects.values()),
        "rows_out": int(s["rows"]),
        "rejects": sum(rejects.values()),
        "top_rejects": [[reason, n] for reason, n in top],  # a list: summary.json's keys are written sorted
        "filtered": s.get("filtered") or {},
        "shards": s["shards"],
        "computed": s["computed"],
        "seconds": round(seconds, 3),
        "items_computed": items,
        "items_per_s": round(items / seconds, 3) if seconds > 0 and items else None,
        "model_load_s": round(load_s, 3) if uses_gpu else None,
    }


def write_summary(out: Path, summaries: dict[str, dict], started: float, wall_s: float) -> dict:
    """`<out>/summary.json` from the stages' run summaries; `started`: the build's start (epoch seconds)."""
    from voxemoset.stages import get_stage
    from voxemoset.store.atomic import write_json
    from voxemoset.store.loads import read_loads

    loads = read_loads(out, since=started)
    stages = [stage_summary(n, s, loads.get(n, []), get_stage(n).uses_gpu) for n, s in summaries.items()]
    summary = {"started": round(started, 3), "wall_s": round(wall_s, 3), "stages": stages}
    write_json(Path(out) / SUMMARY, summary)
    return summary


def _cells(st: dict) -> list:
    reasons = ", ".join(f"{r} {n}" for r, n in st["top_rejects"]) or "-"
    rate = f"{st['items_per_s']:.1f}" if st["items_per_s"] is not None else "-"
    load = f"{st['model_load_s']:.1f} s" if st["model_load_s"] is not None else "-"
    return [st["stage"], st["items_in"], st["rows_out"], reasons, f"{st['seconds']:.1f} s", rate, load]


HEAD = ["stage", "items in", "rows out", "top rejects", "wall", "items/s", "model load"]


def to_markdown(summary: dict) -> str:
    rows = [_cells(st) for st in summary["stages"]]
    return md_table(HEAD, rows) + f"\n\nWall time of the build: {summary['wall_s']:.1f} s."


def print_summary(summary: dict, console) -> None:
    from rich.table import Table

    table = Table(*HEAD, title=f"build summary ({summary['wall_s']:.1f} s)")
    for st in summary["stages"]:
        table.add_row(*(str(c) for c in _cells(st)))
    if not console.is_terminal:  # off a terminal rich assumes 80 columns: the reasons would wrap letter by letter
        from rich.console import Console

        console = Console(file=console.file, width=200, soft_wrap=True)
    console.print(table)


class Clock:
    """A build's start, as epoch seconds (for the load log) and a monotonic clock (for its wall time)."""

    def __init__(self) -> None:
        self.started, self._t0 = time.time(), time.perf_counter()

    @property
    def wall_s(self) -> float:
        return time.perf_counter() - self._t0
