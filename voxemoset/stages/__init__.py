"""The chain's stages, in order; later issues fill in the ones marked not yet built."""

from __future__ import annotations

from voxemoset.errors import UserError

CHAIN = ("images", "captions", "references", "speech", "gates", "dataset", "publish")
# What `voxemoset build` and the demo chain: publishing is its own step. Grows as stages are built.
BUILD_CHAIN = ("images",)


def get_stage(name: str):
    """The stage object for a chain name, or a clear error listing the valid names."""
    if name not in CHAIN:
        raise UserError(f"unknown stage {name!r}; valid stages: {', '.join(CHAIN)}")
    if name == "images":
        from voxemoset.stages.images import ImagesStage

        return ImagesStage()
    raise UserError(f"stage {name!r} is not yet built")
