"""Columns that travel between stages."""

from __future__ import annotations

import pyarrow as pa

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
