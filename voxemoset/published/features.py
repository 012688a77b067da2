"""The published rows' `datasets` features and the Arrow schema that carries them into Parquet."""

from __future__ import annotations

from functools import cache

import pyarrow as pa

from voxemoset.audio import OUT_RATE
from voxemoset.emotions import EMOTIONS

MEDIA_COLUMNS = ("image", "audio")
# EmoSet's per-image annotations (all optional in EmoSet, so nullable here).
ATTRIBUTE_COLUMNS = ("brightness", "colorfulness", "scene", "object", "facial_expression", "human_action")
# Gate figures published as they are (the gates stage's scores plus the intended emotion's probability).
GATE_COLUMNS = ("attempts", "emo_pred", "emo_conf", "emo_target_conf", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak",
                "dnsmos_p808", "asr_text", "wer")  # fmt: skip

# Column -> feature spec, in published order; "image"/"audio"/"emotion" are built in `features()`.
_VALUES: dict[str, str] = {
    "id": "string",
    "split": "string",
    "image": "",
    "image_id": "string",
    "emotion": "",
    "emoset_emotion": "string",
    "caption": "string",
    "caption_index": "int8",
    "audio": "",
    "duration_s": "float64",
    "n_words": "int32",
    "reference_id": "string",
    "reference_corpus": "string",
    "reference_speaker": "string",
    "reference_text": "string",
    "tts_seed": "int64",
    "attempts": "int32",
    "emo_pred": "string",
    "emo_conf": "float64",
    "emo_target_conf": "float64",
    "dnsmos_ovrl": "float64",
    "dnsmos_sig": "float64",
    "dnsmos_bak": "float64",
    "dnsmos_p808": "float64",
    "asr_text": "string",
    "wer": "float64",
    "brightness": "float64",
    "colorfulness": "float64",
    "scene": "string",
    "object": "list",
    "facial_expression": "string",
    "human_action": "string",
}
COLUMNS: tuple[str, ...] = tuple(_VALUES)

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

    special = {
        "image": Image(),
        "audio": Audio(sampling_rate=OUT_RATE),
        "emotion": ClassLabel(names=list(EMOTIONS)),
        "object": List(Value("string")),
    }
    return Features({name: special.get(name) or Value(dtype) for name, dtype in _VALUES.items()})


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
