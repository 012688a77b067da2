"""Preflight: everything a build needs (sources, weights, tools, disk, GPU) checked at once, before any stage runs.

`run_preflight(config, stages)` returns a Report of ready items and problems; `require_ready(report)` raises one
UserError listing every problem. Nothing here loads a model: only the files its loader would look for are checked.
"""

from __future__ import annotations

from voxemoset.config import Config
from voxemoset.preflight.checks import check_gpu, check_model, check_sources, check_tools
from voxemoset.preflight.disk import check_disk
from voxemoset.preflight.items import Item, PreflightError, Report, require_ready
from voxemoset.preflight.models import ModelNeed, model_needs
from voxemoset.stages import BUILD_CHAIN

__all__ = ["Item", "ModelNeed", "PreflightError", "Report", "model_needs", "require_ready", "run_preflight"]


def run_preflight(config: Config, stages: tuple[str, ...] = BUILD_CHAIN, report: bool | None = None) -> Report:
    """Check what the given stages need; the disk estimate and the report's CLIP (never blocking) only for the
    whole chain unless `report` says otherwise."""
    unknown = [s for s in stages if s not in BUILD_CHAIN]
    if unknown:
        raise ValueError(f"not build stages: {unknown}")
    whole = set(BUILD_CHAIN) <= set(stages)
    items = check_sources(config, stages)
    items += [check_model(need) for need in model_needs(config, stages, report=whole if report is None else report)]
    items += check_tools(config, stages)
    items += check_disk(config) if whole else []
    items += check_gpu(config, stages)
    return Report(items)
