"""`references` stage: usable emotional reference clips from CREMA-D, MEAD, RAVDESS, prepared for F5-TTS."""

from voxemoset.stages.references.prep import AudioReject, prepare_reference
from voxemoset.stages.references.stage import SCHEMA, ReferencesStage, prepare_clip

__all__ = ["SCHEMA", "AudioReject", "ReferencesStage", "prepare_clip", "prepare_reference"]
