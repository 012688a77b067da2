"""CREMA-D: `AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav` to clips with EmoBox fold-1 splits."""

from __future__ import annotations

import csv
import io
import re
from functools import cache
from pathlib import Path, PurePath

from voxemoset.corpora.emobox import (
    EmoBoxManifest,
    add_clip,
    load_sentences,
    manifest_file,
    read_split,
    report_missing_files,
    visible_files,
)
from voxemoset.corpora.scan import Clip, RootCheck, Scan
from voxemoset.errors import UserError

EMOBOX = EmoBoxManifest("cremad", "cremad_train_fold_1.jsonl.gz", "cremad_test_fold_1.jsonl.gz", "downloads/cremad/")
CREMAD_TO_EMOTION = {"HAP": "enjoyment", "ANG": "anger", "DIS": "disgust", "FEA": "fear", "SAD": "sadness"}
# Intensity levels as lower-case words (only the IEO sentence has levels; the others are XX).
CREMAD_INTENSITY = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
_STEM = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")

NOT_IN_SPLIT = "cremad_not_in_split"
KNOWN_BAD_CLIP = "cremad_known_bad_clip"
BAD_NAME = "cremad_bad_name"
MANIFEST_FILE_MISSING = "cremad_manifest_file_missing"
PATH_OUTSIDE_ROOT = "cremad_path_outside_root"
# Clips shipped without usable audio; EmoBox still lists them, so they are skipped by key.
KNOWN_BAD = {"cremad-1076-MTI-SAD-XX": "no audio in the released corpus (header-only wav)"}
UNUSED_EMOTIONS = ("NEU",)


def parse_cremad_name(path: str | PurePath) -> tuple[str, str, str, str]:
    """(actor, sentence, emotion, level) from `1001_DFA_ANG_XX.wav`; ValueError if the name is not so."""
    match = _STEM.match(PurePath(path).stem)
    if match is None or PurePath(path).suffix.lower() != ".wav":
        raise ValueError(f"not a CREMA-D name <actor>_<sentence>_<emotion>_<level>.wav: {PurePath(path).name}")
    actor, sentence, emotion, level = match.groups()
    return actor, sentence, emotion, level


def cremad_key(path: str | PurePath) -> str:
    """EmoBox key of a CREMA-D file: `1001_DFA_ANG_XX.wav` -> `cremad-1001-DFA-ANG-XX`."""
    return "cremad-" + "-".join(parse_cremad_name(path))


@cache
def load_sexes() -> dict[str, str]:
    """CREMA-D actor id -> "male"/"female", from VideoDemographics.csv."""
    text = manifest_file("cremad", "VideoDemographics.csv").read_text(encoding="utf-8")
    return {row["ActorID"]: row["Sex"].strip().lower() for row in csv.DictReader(io.StringIO(text))}


def check_tree(root: Path) -> Path:
    """The `AudioWAV/` folder of a CREMA-D root, or a UserError naming what was expected."""
    audio = Path(root) / "AudioWAV"
    if not audio.is_dir():
        raise UserError(
            f"sources.cremad: {root} is not a CREMA-D folder "
            "(expected AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav inside it)"
        )
    return audio


def _wanted(key: str) -> bool:
    return key.split("-")[3] in CREMAD_TO_EMOTION and key not in KNOWN_BAD


def scan_cremad(root: Path) -> Scan[Clip]:
    """Clips of the five emotions with split, sex and transcript; problems and filtered counts (no decoding)."""
    root = Path(root).absolute()
    audio = check_tree(root)
    split, sexes, texts = read_split(EMOBOX), load_sexes(), load_sentences()["cremad"]
    scan: Scan[Clip] = Scan()
    seen: set[str] = set()
    inside = RootCheck(root)  # symlinked files or folders may point out of the corpus
    for path in visible_files(audio):
        if (parsed := scan.parsed(path, parse_cremad_name, BAD_NAME)) is None:
            continue
        actor, sentence, emotion, level = parsed
        key = f"cremad-{actor}-{sentence}-{emotion}-{level}"
        seen.add(key)
        if key in KNOWN_BAD:
            scan.reject(path, KNOWN_BAD_CLIP, KNOWN_BAD[key])
            continue
        if emotion in UNUSED_EMOTIONS:
            scan.filter_out(f"cremad_unused_emotion_{emotion}")
            continue
        if emotion not in CREMAD_TO_EMOTION or level not in CREMAD_INTENSITY or sentence not in texts:
            scan.reject(path, BAD_NAME, "unknown emotion, level or sentence code")
            continue
        clip = {
            "key": key,
            "corpus": "cremad",
            "speaker": f"cremad-{actor}",
            "sex": sexes.get(actor, "unknown"),
            "emotion": CREMAD_TO_EMOTION[emotion],
            "source_emotion": emotion,
            "intensity": CREMAD_INTENSITY[level],
            "sentence": sentence,
            "transcript": texts[sentence],
        }
        add_clip(scan, split, path, clip, inside)
    report_missing_files(scan, EMOBOX, root, seen, _wanted)
    return scan


# The corpus module's face, the same in all six (see `voxemoset.corpora`): the `sources.*` keys it reads, its reader.
ROOTS = ("cremad",)
scan = scan_cremad
