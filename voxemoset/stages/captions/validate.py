"""Check one captioning answer: lenient JSON parsing, then per-caption and pairwise rules; pure functions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

from voxemoset.config import CAPTION_CHECKS
from voxemoset.models.captioners.answer import N_CAPTIONS

CAPTIONS_EMPTY = "captions_empty"
CAPTIONS_NOT_JSON = "captions_not_json"
CAPTIONS_WRONG_COUNT = "captions_wrong_count"
CAPTIONS_TOO_SHORT = "captions_too_short"
CAPTIONS_TOO_LONG = "captions_too_long"
CAPTIONS_EMOTIONAL_WORD = "captions_emotional_word"
CAPTIONS_VISIBLE_EXPRESSION = "captions_visible_expression"  # smiling, crying: when they are banned
CAPTIONS_PREAMBLE = "captions_preamble"
CAPTIONS_NOT_ENGLISH = "captions_not_english"
CAPTIONS_NEAR_DUPLICATE = "captions_near_duplicate"

WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)
TRAILING_COMMA = re.compile(r",\s*([\]}])")
# Only a caption that talks about the image itself: "The image shows", "In this photo, ...", "This picture of",
# "Here is", "We see". A picture, photo or frame that is a thing in the scene ("A picture frame hangs on the
# wall", "The frame of a bicycle leans on a fence", "A photo of a family sits on the desk") is content.
_MEDIUM = r"(?:image|picture|photo|photograph|pic|snapshot|illustration|shot|scene)"
_SHOWING = (r"(?:shows?|showing|depicts?|depicting|features?|featuring|captures?|capturing|contains?|containing"
            r"|displays?|displaying|presents?|presenting|illustrates?|illustrating|portrays?|portraying|is\s+of"
            r"|was\s+taken)")  # fmt: skip
PREAMBLE = re.compile(
    rf"^(?:in|within)\s+(?:the|this|that)\s+{_MEDIUM}\s*(?:,|\b(?:we|you|there|it|is|are|one|a|an|the)\b)"
    rf"|^(?:the|this|that)\s+{_MEDIUM}\s+{_SHOWING}\b"
    rf"|^(?:this|that)\s+{_MEDIUM}\s+of\b"
    r"|^(?:here\s+(?:is|are|we\s+see)|we\s+(?:can\s+)?see|you\s+can\s+see|it\s+(?:shows|depicts|features))\b"
    r"|^(?:image|picture|photo|caption)\s*\d*\s*:",
    re.I,
)
# Names of things that hold a lexicon word without saying anything about emotion: dropped before matching.
FACTUAL_COMPOUNDS = re.compile(r"\bamusement\s+(?:parks?|arcades?|rides?)\b", re.I)
# Function words: an English caption of 8+ words nearly always has several; other languages have their own.
ENGLISH_WORDS = frozenset(
    "a an the of on in at with and is are was were to from by near into onto over under behind beside "
    "next its their his her two three while as for up down out through between across along".split()
)
OTHER_WORDS = frozenset(
    "le la les des une est sur dans avec et du au aux el los las una con por y en del un der die das und "
    "ein eine einem einen mit auf ist im il lo gli della sono che di um uma com os não de het een op zijn".split()
)


@dataclass(frozen=True)
class Verdict:
    """The outcome for one answer: three clean captions, or the first failed rule and why."""

    captions: list[str] = field(default_factory=list)
    reason: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class Rules:
    """Validation limits (from the captions config)."""

    min_words: int = 8
    max_words: int = 15
    max_similarity: float = 0.8
    # Words for visible expressions of emotion that reject a caption (empty: allowed).
    visible_expressions: frozenset[str] = frozenset()
    # The optional checks in force (captions.checks): the paper states only the length band and that captions hold
    # no emotional words; the rest are voxemoset's. The length band and the answer's form always hold.
    checks: frozenset[str] = frozenset(CAPTION_CHECKS)


def load_lexicon(path: Path) -> frozenset[str]:
    """Words of a lexicon file: one lowercase word a line, `#` comments."""
    words = (line.split("#", 1)[0].strip().lower() for line in Path(path).read_text().splitlines())
    return frozenset(w for w in words if w)


def words_of(text: str) -> list[str]:
    """Words as counted for the length rule: letters/digits, with inner apostrophes or hyphens."""
    return WORD.findall(text)


def parse_answer(text: str) -> list | None:
    """The caption list inside a model answer, tolerating fences, chatter around the JSON and trailing commas."""
    fenced = FENCE.search(text)
    candidates = [fenced.group(1)] if fenced else []
    for open_, close in (("{", "}"), ("[", "]")):
        start, end = text.find(open_), text.rfind(close)
        if 0 <= start < end:
            candidates.append(text[start : end + 1])
    for cand in candidates:
        for attempt in (cand, TRAILING_COMMA.sub(r"\1", cand)):
            try:
                data = json.loads(attempt, strict=False)
            except json.JSONDecodeError:
                continue
            found = _caption_list(data)
            if found is not None:
                return found
    return None


def _caption_list(data: object) -> list | None:
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        return None
    for key in ("captions", "Captions", "caption"):
        if isinstance(data.get(key), list):
            return data[key]
    # {"caption_1": "...", "caption_2": "...", ...}: every value a string.
    if data and all(isinstance(v, str) for v in data.values()):
        return list(data.values())
    return None


def is_english(text: str) -> bool:
    """Heuristic: Latin script, and more English than other-language function words."""
    letters = [c for c in text if c.isalpha()]
    if not letters or sum(c.isascii() for c in letters) / len(letters) < 0.9:
        return False
    tokens = [w.lower() for w in words_of(text)]
    english = sum(t in ENGLISH_WORDS for t in tokens)
    return english >= 1 and english > sum(t in OTHER_WORDS for t in tokens)


def similarity(a: str, b: str) -> float:
    """How alike two captions are, 0..1, on lowercased words."""
    return SequenceMatcher(None, " ".join(words_of(a.lower())), " ".join(words_of(b.lower()))).ratio()


def check_caption(caption: str, lexicon: frozenset[str], rules: Rules) -> tuple[str, str] | None:
    """The first rule one caption breaks, as (reason, detail), or None."""
    n = len(words_of(caption))
    if n == 0:
        return CAPTIONS_EMPTY, repr(caption)
    if "preamble" in rules.checks and PREAMBLE.search(caption):
        return CAPTIONS_PREAMBLE, caption
    if "english" in rules.checks and not is_english(caption):
        return CAPTIONS_NOT_ENGLISH, caption
    if n < rules.min_words:
        return CAPTIONS_TOO_SHORT, f"{n} words: {caption}"
    if n > rules.max_words:
        return CAPTIONS_TOO_LONG, f"{n} words: {caption}"
    words = {t.lower() for t in words_of(FACTUAL_COMPOUNDS.sub(" ", caption))}
    if "emotional_words" in rules.checks and (hits := sorted(words & lexicon)):
        return CAPTIONS_EMOTIONAL_WORD, f"{', '.join(hits)}: {caption}"
    if hits := sorted(words & rules.visible_expressions):
        return CAPTIONS_VISIBLE_EXPRESSION, f"{', '.join(hits)}: {caption}"
    return None


def validate_answer(text: str | None, lexicon: frozenset[str], rules: Rules = Rules()) -> Verdict:
    """Parse one raw answer and check every rule; the verdict names the first failure."""
    if text is None or not text.strip():
        return Verdict(reason=CAPTIONS_EMPTY, detail="empty answer")
    items = parse_answer(text)
    if items is None:
        return Verdict(reason=CAPTIONS_NOT_JSON, detail="no JSON list of captions found")
    if not all(isinstance(c, str) for c in items):
        return Verdict(reason=CAPTIONS_NOT_JSON, detail="captions are not all strings")
    captions = [" ".join(c.split()).strip("\"'") for c in items]
    if len(captions) != N_CAPTIONS:
        return Verdict(reason=CAPTIONS_WRONG_COUNT, detail=f"{len(captions)} captions, want {N_CAPTIONS}")
    for caption in captions:
        failure = check_caption(caption, lexicon, rules)
        if failure:
            return Verdict(reason=failure[0], detail=failure[1])
    for i in range(N_CAPTIONS if "near_duplicates" in rules.checks else 0):
        for j in range(i + 1, N_CAPTIONS):
            score = similarity(captions[i], captions[j])
            if score > rules.max_similarity:
                return Verdict(reason=CAPTIONS_NEAR_DUPLICATE, detail=f"captions {i} and {j} are {score:.2f} alike")
    return Verdict(captions=captions)
