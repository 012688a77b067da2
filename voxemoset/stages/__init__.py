"""The chain's stages, in order; later issues fill in the ones marked not yet built."""

from __future__ import annotations

from importlib import import_module

from voxemoset.errors import UserError

CHAIN = ("images", "captions", "references", "speech", "gates", "dataset", "publish")
# What `voxemoset build` and the demo chain: publishing is its own step. Grows as stages are built.
BUILD_CHAIN = ("images", "captions", "references", "speech", "gates", "dataset")
# Stage name -> "module:Class", imported only when asked for (each stage pulls its own heavy libraries).
BUILT = {
    "images": "voxemoset.stages.images:ImagesStage",
    "captions": "voxemoset.stages.captions:CaptionsStage",
    "references": "voxemoset.stages.references:ReferencesStage",
    "speech": "voxemoset.stages.speech:SpeechStage",
    "gates": "voxemoset.stages.gates:GatesStage",
    "dataset": "voxemoset.stages.dataset:DatasetStage",
}


def get_stage(name: str):
    """The stage object for a chain name, or a clear error listing the valid names."""
    if name not in CHAIN:
        raise UserError(f"unknown stage {name!r}; valid stages: {', '.join(CHAIN)}")
    if name not in BUILT:
        raise UserError(f"stage {name!r} is not yet built")
    module, cls = BUILT[name].split(":")
    return getattr(import_module(module), cls)()
