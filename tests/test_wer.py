"""Word error rate after Whisper's English normalisation: format differences cost nothing, word errors do."""

from __future__ import annotations

import pytest

from voxemoset.config import GatesConfig
from voxemoset.stages.gates.intelligibility import normalise, spelling_map_path, word_error_rate

BUS = "A red bus drives slowly past an old stone church."

# (caption, transcript, WER)
CASES = [
    # numbers
    ("Ten dogs", "10 dogs", 0.0),
    ("Ten dogs run across the field.", "10 dogs run across the field", 0.0),
    ("Twenty-one candles burn on the cake.", "21 candles burn on the cake.", 0.0),
    ("One hundred and five balloons float.", "105 balloons float.", 0.0),
    ("She has 2,000 stamps.", "She has two thousand stamps.", 0.0),
    ("The 1990s were loud.", "the nineteen nineties were loud", 0.0),
    ("Five percent of the cake.", "5% of the cake.", 0.0),
    ("A $20 bill lies on the table.", "A twenty dollar bill lies on the table.", 0.0),
    # ordinals
    ("The first dog sleeps.", "The 1st dog sleeps.", 0.0),
    ("The twenty-first birthday party.", "the 21st birthday party", 0.0),
    ("A third place finish.", "a 3rd place finish", 0.0),
    # hyphens
    ("A well-known painter smiles.", "A well known painter smiles.", 0.0),
    ("A black-and-white cat naps.", "a black and white cat naps", 0.0),
    # titles
    ("Mr. Smith reads a paper.", "Mister Smith reads a paper", 0.0),
    ("Dr. Jones waves.", "Doctor Jones waves.", 0.0),
    ("Mrs. Brown waters the plants.", "missus brown waters the plants", 0.0),
    # British / American spelling
    ("The colour of the sky.", "The color of the sky.", 0.0),
    ("A grey cat in the theatre.", "A gray cat in the theater.", 0.0),
    ("They're organising a party.", "They are organizing a party.", 0.0),
    # contractions and apostrophes
    ("They don't look back.", "They do not look back.", 0.0),
    ("It's raining on the street.", "it is raining on the street", 0.0),
    ("We'll be there soon.", "We will be there soon.", 0.0),
    ("The girl\u2019s coat is red.", "The girl's coat is red.", 0.0),  # a typographic apostrophe in the caption
    ("They don\u2019t look back.", "They do not look back.", 0.0),
    # punctuation, case, fillers
    ("Hello, world! How are you?", "hello world how are you", 0.0),
    ("The dog barks.", "Hmm, the dog barks.", 0.0),
    # real errors still count: a skipped word, a repeated word, a wrong number, a lost phrase
    (BUS, "A red bus drives past an old stone church.", 0.1),
    (BUS, "A red bus bus drives slowly past an old stone church.", 0.1),
    ("Ten dogs", "11 dogs", 0.5),
    ("Two dogs and three cats play.", "Two dogs play.", 0.5),
    ("The dog barks.", "", 1.0),
    ("", "", 0.0),
    ("", "Thank you.", 1.0),
]


@pytest.mark.parametrize("caption, transcript, wer", CASES)
def test_wer_after_whisper_normalisation(caption, transcript, wer):
    assert word_error_rate(caption, transcript) == pytest.approx(wer)


def test_normalised_text_is_whisper_style():
    assert normalise("Mr. Smith doesn't like the colour of the twenty-first-century buses!") == (
        "mister smith does not like the color of the 21st century buses"
    )
    assert normalise(None) == ""


def test_spelling_map_is_whispers():
    # The packaged map is OpenAI's english.json (~1,700 British -> American spellings).
    import json

    spellings = json.loads(spelling_map_path().read_text(encoding="utf-8"))
    assert len(spellings) > 1500 and spellings["colour"] == "color"


EIGHT = "A small boat rests on the calm lake."
FIFTEEN = "A tall man in a long coat walks his dog past the old brick station."


@pytest.mark.parametrize(
    "caption, transcript, fails",
    [
        (EIGHT, "A small boat rests on the lake.", True),  # skipped word, 1/8
        (EIGHT, "A small small boat rests on the calm lake.", True),  # repeated word, 1/8
        (FIFTEEN, FIFTEEN.replace(" old", ""), True),  # skipped word, 1/15
        (FIFTEEN, FIFTEEN.replace("dog", "dog dog"), True),  # repeated word, 1/15
        (FIFTEEN, FIFTEEN.lower().rstrip("."), False),
        ("Two red buses drive past the grey church.", "2 red buses drive past the gray church", False),
    ],
)
def test_default_max_wer_catches_one_skipped_or_repeated_word(caption, transcript, fails):
    assert len(FIFTEEN.split()) == 15 and len(EIGHT.split()) == 8
    assert (word_error_rate(caption, transcript) > GatesConfig().max_wer) is fails
