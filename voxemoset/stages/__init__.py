"""The chain's stages, in order, and where each stage class lives (imported only when asked for)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from voxemoset.errors import UserError

if TYPE_CHECKING:
    from voxemoset.store.stage import StageBase

# What `voxemoset build` and the demo chain.
BUILD_CHAIN = ("images", "captions", "references", "speech", "gates", "dataset")
# Publishing the built dataset is its own step: `voxemoset stage publish` runs it, but it has no shards.
PUBLISH = "publish"
CHAIN = (*BUILD_CHAIN, PUBLISH)
# Stage name -> "module:Class", imported only when asked for (each stage pulls its own heavy libraries).
BUILT = {
    "images": "voxemoset.stages.images:ImagesStage",
    "captions": "voxemoset.stages.captions:CaptionsStage",
    "references": "voxemoset.stages.references:ReferencesStage",
    "speech": "voxemoset.stages.speech:SpeechStage",
    "gates": "voxemoset.stages.gates:GatesStage",
    "dataset": "voxemoset.stages.dataset:DatasetStage",
}


def get_stage(name: str) -> StageBase:
    """The stage object for a chain name, or a clear error listing the valid names."""
    if name not in CHAIN:
        raise UserError(f"unknown stage {name!r}; valid stages: {', '.join(CHAIN)}")
    if name not in BUILT:
        raise UserError(f"{name!r} has no shards: it uploads the built dataset (`voxemoset stage {name} -c CONFIG`)")
    module, cls = BUILT[name].split(":")
    return getattr(import_module(module), cls)()
