"""CREMA-D: `AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav` to clips with EmoBox fold-1 splits."""

from __future__ import annotations

import csv
import io
from functools import cache
from pathlib import Path

from voxemoset.emotions import CREMAD_TO_EMOTION
from voxemoset.errors import UserError
from voxemoset.sources.base import Problem, RootCheck, Scan
from voxemoset.sources.clips import CREMAD_INTENSITY, Clip
from voxemoset.sources.emobox import (
    add_clip,
    load_sentences,
    load_split,
    manifest_file,
    parse_cremad_name,
    report_missing_files,
    visible_files,
)

NOT_IN_SPLIT = "cremad_not_in_split"
KNOWN_BAD_CLIP = "cremad_known_bad_clip"
BAD_NAME = "cremad_bad_name"
MANIFEST_FILE_MISSING = "cremad_manifest_file_missing"
PATH_OUTSIDE_ROOT = "cremad_path_outside_root"
# Clips shipped without usable audio; EmoBox still lists them, so they are skipped by key.
KNOWN_BAD = {"cremad-1076-MTI-SAD-XX": "no audio in the released corpus (header-only wav)"}
UNUSED_EMOTIONS = ("NEU",)


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
    split, sexes, texts = load_split("cremad"), load_sexes(), load_sentences()["cremad"]
    scan: Scan[Clip] = Scan()
    seen: set[str] = set()
    inside = RootCheck(root)  # symlinked files or folders may point out of the corpus
    for path in visible_files(audio):
        try:
            actor, sentence, emotion, level = parse_cremad_name(path)
        except ValueError as exc:
            scan.problems.append(Problem(str(path), BAD_NAME, str(exc)))
            continue
        key = f"cremad-{actor}-{sentence}-{emotion}-{level}"
        seen.add(key)
        if key in KNOWN_BAD:
            scan.problems.append(Problem(str(path), KNOWN_BAD_CLIP, KNOWN_BAD[key]))
            continue
        if emotion in UNUSED_EMOTIONS:
            scan.filter_out(f"cremad_unused_emotion_{emotion}")
            continue
        if emotion not in CREMAD_TO_EMOTION or level not in CREMAD_INTENSITY or sentence not in texts:
            scan.problems.append(Problem(str(path), BAD_NAME, "unknown emotion, level or sentence code"))
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
    report_missing_files(scan, "cremad", root, seen, _wanted)
    return scan
