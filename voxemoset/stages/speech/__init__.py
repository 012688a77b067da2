"""`speech` stage: each caption spoken by F5-TTS in the voice of a reference of its image's emotion and split."""

from voxemoset.stages.speech.assign import assign_references
from voxemoset.stages.speech.stage import SCHEMA, SpeechModel, SpeechStage, utterance_id

__all__ = ["SCHEMA", "SpeechModel", "SpeechStage", "assign_references", "utterance_id"]
