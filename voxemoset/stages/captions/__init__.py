"""`captions` stage: three validated, emotion-free captions per image (stage.py), judged by validate.py."""

from voxemoset.stages.captions.prompt import default_lexicon
from voxemoset.stages.captions.stage import CAPTIONS_TABLE_BAD_ROW, SCHEMA, CaptionModel, CaptionsStage, rules_of

__all__ = ["CAPTIONS_TABLE_BAD_ROW", "SCHEMA", "CaptionModel", "CaptionsStage", "default_lexicon", "rules_of"]
