"""`voxemoset report`: Table-1 figures, breakdowns, plots and an HTML page of samples."""

from __future__ import annotations

import json
from pathlib import Path

from voxemoset.config import ReportConfig
from voxemoset.errors import UserError
from voxemoset.report.other_corpora import CremadInputs


def cremad_inputs(cfg) -> CremadInputs:
    """CREMA-D's Table 1 row reads the build's own CREMA-D folder and emotion2vec (a `Config`)."""
    return CremadInputs(cfg.sources.cremad, str(cfg.gates.emotion_model), cfg.gates.emotion_device)


def write_report(
    out: Path, sample: int = 200, settings: ReportConfig | None = None, cremad: CremadInputs | None = None
) -> Path:
    """Write `<out>/report/` (report.json, report.md, PNGs, index.html) and return that folder.

    When CLIP cannot load, every other figure is still written and CLIPScore is marked missing with the reason;
    `require_complete` then turns that into the error. `cremad` (see `cremad_inputs`) adds CREMA-D's Table 1 row.
    """
    from voxemoset.report.figures import compute, to_markdown
    from voxemoset.report.html import write_html
    from voxemoset.report.plots import write_plots
    from voxemoset.store.atomic import write_atomic, write_json

    out = Path(out)
    if not out.is_dir():
        raise UserError(f"build output folder not found: {out}")
    report = compute(out, settings, cremad)
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


def clip_error(folder: Path) -> str | None:
    """Why the written report has no CLIPScore (the download command included), or None when it has one."""
    return read_report(folder).get("table1_method", {}).get("clip_score", {}).get("error")


def require_complete(folder: Path) -> None:
    """One UserError line (naming the download command) if the written report lacks CLIPScore."""
    error = clip_error(folder)
    if error:
        raise UserError(f"CLIPScore missing from {Path(folder) / 'report.json'} (every other figure written): "
                        f"{error}")  # fmt: skip
