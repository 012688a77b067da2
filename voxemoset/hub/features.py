"""The published rows' `datasets` features and the Arrow schema that carries them into Parquet."""

from __future__ import annotations

from functools import cache

import pyarrow as pa

from voxemoset.audio import OUT_RATE
from voxemoset.emotions import EMOTIONS
from voxemoset.rows import (
    ATTRIBUTE_COLUMNS,
    ATTRIBUTE_FIELDS,
    CAPTION_FIELDS,
    GATE_FIELDS,
    GATE_UNPUBLISHED,
    MEDIA,
    REFERENCE_COLUMNS,
    REFERENCE_FIELDS,
    UTTERANCE_FIELDS,
    field_types,
)

MEDIA_COLUMNS = ("image", "audio")
# Gate figures published as they are (the gates stage's scores, less the raw probabilities and the log).
GATE_COLUMNS = tuple(name for name, _ in GATE_FIELDS if name not in GATE_UNPUBLISHED)
# The published order: the row, what is seen, what is heard, how it was spoken, how it was judged, EmoSet's
# annotations. Each column's type is the one its stage writes (voxemoset/rows.py), never listed here again.
COLUMNS: tuple[str, ...] = ("id", "split", "image", "image_id", "emotion", "emoset_emotion", "caption",
                            "caption_index", "audio", "duration_s", "n_words", *REFERENCE_COLUMNS, "tts_seed",
                            *GATE_COLUMNS, *ATTRIBUTE_COLUMNS)  # fmt: skip
_TYPES = field_types(UTTERANCE_FIELDS, CAPTION_FIELDS, REFERENCE_FIELDS, GATE_FIELDS, ATTRIBUTE_FIELDS,
                     [("image", MEDIA)])  # fmt: skip
_DTYPES = {"double": "float64", "float": "float32"}  # Arrow's names -> datasets' Value names, where they differ

DESCRIPTIONS = {
    "id": "utterance id (hash of image, caption index, reference and seed)",
    "split": "train (EmoSet train + val) or test (EmoSet test)",
    "image": "the EmoSet image (original JPEG/PNG bytes when RGB, else RGB PNG)",
    "image_id": "EmoSet image id (file stem)",
    "emotion": f"VoxEmoset emotion, ClassLabel: {', '.join(EMOTIONS)}",
    "emoset_emotion": "the image's original EmoSet label",
    "caption": "emotion-free caption of the image (LLaVA-OneVision)",
    "caption_index": "which of the image's three captions (0-2)",
    "audio": f"the caption spoken by F5-TTS with an emotional reference, FLAC {OUT_RATE} Hz mono",
    "duration_s": "audio length in seconds",
    "n_words": "words in the caption",
    "reference_id": "reference clip that set the voice and emotion",
    "reference_corpus": "cremad, mead or ravdess",
    "reference_speaker": "speaker of the reference clip",
    "reference_text": "transcript of the reference clip",
    "tts_seed": "F5-TTS sampling seed of the kept attempt",
    "attempts": "synthesis attempts used (1 = first try passed)",
    "emo_pred": "emotion2vec's top emotion for the clip",
    "emo_conf": "emotion2vec's probability of its top emotion",
    "emo_target_conf": "emotion2vec's probability of the intended emotion",
    "dnsmos_ovrl": "DNSMOS P.835 overall",
    "dnsmos_sig": "DNSMOS P.835 signal",
    "dnsmos_bak": "DNSMOS P.835 background",
    "dnsmos_p808": "DNSMOS P.808",
    "asr_text": "Whisper transcript of the clip",
    "wer": "word error rate of asr_text against the caption",
    "brightness": "EmoSet attribute (0-1)",
    "colorfulness": "EmoSet attribute (0-1)",
    "scene": "EmoSet attribute",
    "object": "EmoSet attribute (object labels)",
    "facial_expression": "EmoSet attribute",
    "human_action": "EmoSet attribute",
}


@cache
def features():
    """The published rows as `datasets.Features` (Image, Audio at 16 kHz, ClassLabel emotion)."""
    from datasets import Audio, ClassLabel, Features, Image, List, Value

    def value(kind: pa.DataType):
        if pa.types.is_list(kind):
            return List(value(kind.value_type))
        return Value(_DTYPES.get(str(kind), str(kind)))

    special = {"image": Image(), "audio": Audio(sampling_rate=OUT_RATE), "emotion": ClassLabel(names=list(EMOTIONS))}
    return Features({name: special.get(name) or value(_TYPES[name]) for name in COLUMNS})


@cache
def arrow_schema() -> pa.Schema:
    """Arrow schema of the shards; its `huggingface` metadata makes `datasets` read the features back typed."""
    return features().arrow_schema


def parquet_column_options(schema: pa.Schema) -> dict:
    """Per-leaf Parquet options as `datasets` writes them: media bytes stored plain and uncompressed.

    JPEG/PNG/FLAC are already compressed; recompressing costs time and hides byte-identical content from
    the Hub's content-defined chunking, so a re-upload would resend them.
    """
    compression, use_dictionary, encoding = {}, [], {}
    for field in schema:
        leaves = [f"{field.name}.{c.name}" for c in field.type] if pa.types.is_struct(field.type) else None
        if pa.types.is_list(field.type):
            leaves = [f"{field.name}.list.element"]
        for leaf in leaves or [field.name]:
            if field.name in MEDIA_COLUMNS:
                compression[leaf], encoding[leaf] = "none", "PLAIN"
            else:
                compression[leaf] = "snappy"
                use_dictionary.append(leaf)
    return {"compression": compression, "use_dictionary": use_dictionary, "column_encoding": encoding}


def emotion_index(name: str) -> int:
    """The ClassLabel integer of a five-class emotion name."""
    return EMOTIONS.index(name)
