"""`voxemoset report`: Table-1 figures, breakdowns, plots and an HTML page of samples."""

from __future__ import annotations

import json
from pathlib import Path

from voxemoset.errors import UserError


def write_report(out: Path, sample: int = 200) -> Path:
    """Write `<out>/report/` (report.json, report.md, PNGs, index.html) and return that folder."""
    from voxemoset.report.figures import compute, to_markdown
    from voxemoset.report.html import write_html
    from voxemoset.report.plots import write_plots
    from voxemoset.store.atomic import write_atomic, write_json

    out = Path(out)
    if not out.is_dir():
        raise UserError(f"build output folder not found: {out}")
    report = compute(out)
    folder = out / "report"
    write_json(folder / "report.json", report)
    text = to_markdown(report)
    write_atomic(folder / "report.md", lambda tmp: tmp.write_text(text))
    plots = write_plots(report, folder)
    write_html(out, report, plots, folder / "index.html", sample=sample)
    return folder


def read_report(folder: Path) -> dict:
    """A written report.json."""
    return json.loads((Path(folder) / "report.json").read_text())
