"""The paper's Tab. 2 layout: rows = systems; columns = FID and CLIPScore per test set, then Emo-A (VoxEmoset)."""

from __future__ import annotations

import json
from pathlib import Path

from voxemoset.markdown import md_table

NAMES = {"fid": "FID ↓", "clip_score": "CLIPScore ↑", "emo_a": "Emo-A ↑"}


def columns(test_sets: list[dict], metrics: tuple[str, ...]) -> list[tuple[str, str]]:
    """(test set, metric) per column: FID and CLIPScore of every set, then Emo-A of the emotional sets."""
    cols = [(t["name"], m) for t in test_sets for m in ("fid", "clip_score") if m in metrics]
    cols += [(t["name"], "emo_a") for t in test_sets if t["kind"] == "voxemoset" and "emo_a" in metrics]
    return cols


def build_table(test_sets: list[dict], systems: list[dict], results: dict, metrics: tuple[str, ...]) -> dict:
    """The table as data: `results[system][test set][metric]`."""
    cols = columns(test_sets, metrics)
    rows = []
    for system in systems:
        values = {f"{t}/{m}": results[system["name"]][t][m] for t, m in cols}
        rows.append({**system, "values": values})
    return {"columns": [f"{t}/{m}" for t, m in cols], "test_sets": test_sets, "rows": rows}


def _cell(value: float | None, metric: str) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}" if metric == "emo_a" else f"{value:.2f}"


def markdown(table: dict) -> str:
    """A Markdown table: a header row of set and metric names (Emo-A in %), one row per system."""
    header = ["System"]
    for col in table["columns"]:
        name, metric = col.rsplit("/", 1)
        header.append(f"{name} {NAMES[metric]}")
    rows = [[row["name"], *(_cell(row["values"][c], c.rsplit("/", 1)[1]) for c in table["columns"])]
            for row in table["rows"]]  # fmt: skip
    sizes = ", ".join(f"{t['name']}: {t['prompts']} prompts (seed {t['seed']})" for t in table["test_sets"])
    return md_table(header, rows) + f"\n\n{sizes}.\n"


def write_table(table: dict, out_dir: Path) -> tuple[Path, Path]:
    """`<out_dir>/table.md` and `table.json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "table.md", out_dir / "table.json"
    md.write_text(markdown(table))
    js.write_text(json.dumps(table, indent=2, ensure_ascii=False))
    return md, js
