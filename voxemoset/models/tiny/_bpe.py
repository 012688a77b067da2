"""Byte-level BPE vocabularies learned from a fixed English text, for the tiny tokenizers."""

from __future__ import annotations

import json
from typing import Any

# Any English text will do: the merges only shorten sequences; every byte stays encodable without them.
CORPUS = (
    "A photo of a smiling child holding a red balloon in a sunny park. "
    "The storm clouds gather over the grey sea while an old man looks worried. "
    "Two friends laugh together at a birthday party with cake and candles. "
    "A dark alley at night, with a shadow that makes the scene feel frightening. "
    "Rotten food on a dirty plate, which is disgusting to look at. "
    "Describe the image in one sentence and say how it makes you feel. "
    "The woman is angry, shouting at the broken car on the side of the road. "
    "A lonely dog sits in the rain, and the picture feels sad and quiet. "
    "Bright flowers, blue sky and happy people walking along the beach. "
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (the alphabet of byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def train_byte_bpe(pre_tokenizer: Any, vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocab, merges) over all 256 byte symbols plus merges learned from CORPUS with `pre_tokenizer`.

    The trainer is deterministic for a fixed text and vocab size; using the target tokenizer's own
    pre-tokenizer keeps the merges consistent with how that tokenizer splits text.
    """
    from tokenizers import Tokenizer, models, trainers

    alphabet = sorted(bytes_to_unicode().values())
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, show_progress=False)
    bpe.train_from_iterator([CORPUS] * 4, trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["merges"]]
    return dict(state["vocab"]), merges
