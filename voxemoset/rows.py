"""Columns that travel between stages and into the published rows, typed once (Arrow): stages build their schemas
from these groups and the published `datasets` features derive from them (`hub/features.py`)."""

from __future__ import annotations

import pyarrow as pa

MEDIA = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # an image or a clip, as `datasets` stores it

# What identifies a caption and travels with it downstream (speech rows, gate rows, published rows).
CAPTION_FIELDS = [
    ("image_id", pa.string()),
    ("split", pa.string()),
    ("emotion", pa.string()),
    ("emoset_emotion", pa.string()),
    ("caption_index", pa.int8()),
    ("caption", pa.string()),
    ("n_words", pa.int32()),
]
CAPTION_COLUMNS = tuple(name for name, _ in CAPTION_FIELDS)

# The reference clip an utterance was spoken after (speech rows, gate attempts, published rows).
REFERENCE_FIELDS = [
    ("reference_id", pa.string()),
    ("reference_corpus", pa.string()),
    ("reference_speaker", pa.string()),
    ("reference_text", pa.string()),
]
REFERENCE_COLUMNS = tuple(name for name, _ in REFERENCE_FIELDS)

# An utterance's clip as the speech stage makes it (and gates replaces it with the kept attempt's).
UTTERANCE_FIELDS = [("id", pa.string()), ("tts_seed", pa.int64()), ("duration_s", pa.float64()), ("audio", MEDIA)]

# What the gates record of the kept (or best) attempt: its scores, then the attempt count and every attempt's log.
SCORE_FIELDS = [
    ("emo_pred", pa.string()),
    ("emo_conf", pa.float64()),
    ("emo_target_conf", pa.float64()),
    ("emo_scores", pa.string()),
    ("dnsmos_ovrl", pa.float64()),
    ("dnsmos_sig", pa.float64()),
    ("dnsmos_bak", pa.float64()),
    ("dnsmos_p808", pa.float64()),
    ("asr_text", pa.string()),
    ("wer", pa.float64()),
]
GATE_FIELDS = [("attempts", pa.int32()), *SCORE_FIELDS, ("gate_log", pa.string())]
GATE_UNPUBLISHED = ("emo_scores", "gate_log")  # kept in the gates shards; the published rows leave them out

# EmoSet's per-image annotations (all optional in EmoSet, so nullable): images rows and published rows.
ATTRIBUTE_FIELDS = [
    ("brightness", pa.float64()),
    ("colorfulness", pa.float64()),
    ("scene", pa.string()),
    ("object", pa.list_(pa.string())),
    ("facial_expression", pa.string()),
    ("human_action", pa.string()),
]
ATTRIBUTE_COLUMNS = tuple(name for name, _ in ATTRIBUTE_FIELDS)


def field_types(*groups: list[tuple[str, pa.DataType]]) -> dict[str, pa.DataType]:
    """Column -> Arrow type over field groups (a column in two groups must have one type)."""
    types: dict[str, pa.DataType] = {}
    for name, kind in (f for g in groups for f in g):
        assert types.setdefault(name, kind).equals(kind), f"column {name} typed twice"
    return types
