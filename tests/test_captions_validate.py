"""The caption validator over hand-written answers: one row per way an answer can be good or bad."""

from __future__ import annotations

import json

import pytest

from voxemoset.config import CaptionsConfig
from voxemoset.resources import default_prompt
from voxemoset.stages.captions import default_lexicon, rules_of
from voxemoset.stages.captions.validate import (
    CAPTIONS_EMOTIONAL_WORD,
    CAPTIONS_EMPTY,
    CAPTIONS_NEAR_DUPLICATE,
    CAPTIONS_NOT_ENGLISH,
    CAPTIONS_NOT_JSON,
    CAPTIONS_PREAMBLE,
    CAPTIONS_TOO_LONG,
    CAPTIONS_TOO_SHORT,
    CAPTIONS_VISIBLE_EXPRESSION,
    CAPTIONS_WRONG_COUNT,
    Rules,
    load_lexicon,
    validate_answer,
    words_of,
)

LEXICON = load_lexicon(default_lexicon())
DOG = "A brown dog carries a red ball across a wide grassy field."
TREES = "Tall pine trees line the far edge of the field under a cloudy sky."
MAN = "Near the wooden fence, a man in a blue jacket holds a leash."
GOOD = [DOG, TREES, MAN]
EIGHT = "Two red bicycles lean against a brick wall."
FIFTEEN = "Tall pine trees line the far edge of the field under a cloudy winter sky."
DEFAULT_RULES = rules_of(CaptionsConfig())  # what the stage judges by: visible expressions banned


def answer(*captions: str) -> str:
    return json.dumps({"captions": list(captions)})


CASES = [
    # (case, raw answer, expected reason or None when accepted)
    ("good", answer(*GOOD), None),
    ("good in a fence with chatter", f"Sure! Here you go:\n```json\n{answer(*GOOD)}\n```\nHope it helps.", None),
    ("good with trailing comma", answer(*GOOD).replace('"]}', '",],}'), None),
    ("good as a bare list", json.dumps(GOOD), None),
    ("good as numbered keys", json.dumps({"caption_1": DOG, "caption_2": TREES, "caption_3": MAN}), None),
    ("good, exactly 8 and 15 words", answer(DOG, EIGHT, FIFTEEN), None),
    ("two captions", answer(DOG, TREES), CAPTIONS_WRONG_COUNT),
    ("four captions", answer(*GOOD, "A white boat floats on the calm lake behind the trees."), CAPTIONS_WRONG_COUNT),
    ("too short", answer(DOG, TREES, "A man holds a leash."), CAPTIONS_TOO_SHORT),
    (
        "too long",
        answer(
            DOG, TREES, "Near the old wooden fence at the far end of the field a man in a blue jacket holds a leash."
        ),
        CAPTIONS_TOO_LONG,
    ),
    (
        "emotional word",
        answer("A happy brown dog carries a red ball across a field.", TREES, MAN),
        CAPTIONS_EMOTIONAL_WORD,
    ),
    (
        "inflected emotional word",
        answer(DOG, TREES, "Near the wooden fence, a man in a blue jacket looks frightened."),
        CAPTIONS_EMOTIONAL_WORD,
    ),
    (
        "visible expression (banned by default)",
        answer(DOG, TREES, "Near the wooden fence, a man in a blue jacket is smiling."),
        CAPTIONS_VISIBLE_EXPRESSION,
    ),
    (
        "subjective word",
        answer(DOG, "Beautiful pine trees line the far edge of the field.", MAN),
        CAPTIONS_EMOTIONAL_WORD,
    ),
    ("exact duplicates", answer(DOG, DOG, MAN), CAPTIONS_NEAR_DUPLICATE),
    (
        "near duplicates",
        answer(DOG, TREES, "A brown dog carries a red ball across the wide grassy field."),
        CAPTIONS_NEAR_DUPLICATE,
    ),
    ("not JSON", f"1. {DOG}\n2. {TREES}\n3. {MAN}", CAPTIONS_NOT_JSON),
    ("truncated JSON", answer(*GOOD)[:60], CAPTIONS_NOT_JSON),
    ("captions not strings", json.dumps({"captions": [1, 2, 3]}), CAPTIONS_NOT_JSON),
    ("empty", "", CAPTIONS_EMPTY),
    ("whitespace only", "  \n\t ", CAPTIONS_EMPTY),
    ("an empty caption", answer(DOG, "   ", MAN), CAPTIONS_EMPTY),
    (
        "preamble: the image shows",
        answer("The image shows a brown dog carrying a red ball.", TREES, MAN),
        CAPTIONS_PREAMBLE,
    ),
    (
        "preamble: in this photo",
        answer(DOG, TREES, "In this photo, a man in a blue jacket holds a leash."),
        CAPTIONS_PREAMBLE,
    ),
    (
        "preamble: we can see",
        answer(DOG, "We can see tall pine trees along the far edge of the field.", MAN),
        CAPTIONS_PREAMBLE,
    ),
    (
        "French",
        answer(DOG, TREES, "Un homme en veste bleue tient une laisse près de la clôture en bois."),
        CAPTIONS_NOT_ENGLISH,
    ),
    (
        "German",
        answer("Ein brauner Hund trägt einen roten Ball über eine große Wiese.", TREES, MAN),
        CAPTIONS_NOT_ENGLISH,
    ),
    (
        "Chinese",
        answer(DOG, "一只棕色的狗叼着红色的球穿过一片宽阔的草地，远处有高大的松树。", MAN),
        CAPTIONS_NOT_ENGLISH,
    ),
]


@pytest.mark.parametrize(("raw", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validate_answer(raw, reason):
    verdict = validate_answer(raw, LEXICON, DEFAULT_RULES)
    assert verdict.reason == reason, verdict.detail
    if reason is None:
        assert len(verdict.captions) == 3 and verdict.ok
    else:
        assert not verdict.captions and verdict.detail


def test_table_is_broad():
    assert len(CASES) >= 15
    assert len({c[2] for c in CASES}) == 11  # accepted plus all ten reasons


def test_none_answer_is_empty():
    assert validate_answer(None, LEXICON).reason == CAPTIONS_EMPTY


def test_captions_are_normalised():
    verdict = validate_answer(answer(f"  {DOG}\n", f'"{TREES}"', MAN), LEXICON)
    assert verdict.captions == GOOD


def test_rules_are_configurable():
    short = answer(DOG, TREES, "A man holds a leash.")
    assert validate_answer(short, LEXICON, Rules(min_words=5)).ok
    assert validate_answer(answer(*GOOD), LEXICON, Rules(max_words=11)).reason == CAPTIONS_TOO_LONG


def test_word_count_keeps_hyphens_and_apostrophes():
    assert len(words_of("A black-and-white cat sits on the man's lap.")) == 8
    assert len(words_of(EIGHT)) == 8 and len(words_of(FIFTEEN)) == 15


def test_lexicon_file_is_lowercase_unique_and_sizeable():
    lines = [ln for ln in default_lexicon().read_text().splitlines() if ln and not ln.startswith("#")]
    assert default_lexicon().read_text().startswith("#")  # provenance header
    assert len(lines) == len(set(lines)) >= 300
    assert all(ln == ln.strip().lower() and " " not in ln for ln in lines)
    assert {"happy", "sad", "beautiful", "scary", "joyful", "angry", "lovely", "cute", "terrible"} <= LEXICON


def test_prompt_asks_for_the_contract():
    prompt = default_prompt().read_text()
    for phrase in ("three", "8 to 15 words", "JSON", '"captions"', "objects", "actions", "spatial", "surroundings"):
        assert phrase in prompt
