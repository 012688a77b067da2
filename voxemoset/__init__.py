"""voxemoset: build VoxEmoset, emotional spoken descriptions paired with emotional images."""

__version__ = "0.1.0"
