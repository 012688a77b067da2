"""`dataset` stage: gates utterances joined with their images, published as Hub-ready shards plus a card."""

from voxemoset.stages.dataset.stage import DatasetStage

__all__ = ["DatasetStage"]
