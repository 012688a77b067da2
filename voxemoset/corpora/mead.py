"""MEAD audio: `<speaker>/audio/<emotion>/level_<n>/<nnn>.m4a` to clips with EmoBox fold-1 splits."""

from __future__ import annotations

import re
from pathlib import Path, PurePath

from voxemoset.corpora.emobox import EmoBoxManifest, add_clip, read_split, report_missing_files, visible_files
from voxemoset.corpora.scan import Clip, RootCheck, Scan
from voxemoset.errors import UserError

# The train file is derived, not upstream (see manifests/PROVENANCE.md).
EMOBOX = EmoBoxManifest("mead", "mead_train_fold_1.DERIVED.jsonl.gz", "mead_test_fold_1.jsonl.gz", "downloads/mead/")
MEAD_TO_EMOTION = {"happy": "enjoyment", "angry": "anger", "disgusted": "disgust", "fear": "fear", "sad": "sadness"}

NOT_IN_SPLIT = "mead_not_in_split"
BAD_NAME = "mead_bad_name"
MANIFEST_FILE_MISSING = "mead_manifest_file_missing"
PATH_OUTSIDE_ROOT = "mead_path_outside_root"
AUDIO_NOT_EXTRACTED = "mead_audio_not_extracted"
UNUSED_EMOTIONS = ("neutral", "contempt", "surprised")
# Intensity stays as MEAD's folders name it: `level_1` / `level_2` / `level_3`.
_SPEAKER = re.compile(r"^[MW]\d{3}$")
_CLIP = re.compile(r"^\d{3}$")
_LEVEL = re.compile(r"^level_(\d)$")


def parse_mead_path(path: str | PurePath) -> tuple[str, str, str, str]:
    """(speaker, emotion, level digit, clip number) from `.../M040/audio/angry/level_2/014.m4a`."""
    p = PurePath(path)
    parts = p.parts[-5:]
    level = _LEVEL.match(parts[3]) if len(parts) == 5 else None
    if (
        level is None
        or parts[1] != "audio"
        or not _SPEAKER.match(parts[0])
        or not _CLIP.match(p.stem)
        or p.suffix.lower() != ".m4a"
    ):
        raise ValueError(f"not a MEAD path <speaker>/audio/<emotion>/level_<n>/<nnn>.m4a: {p}")
    return parts[0], parts[2], level.group(1), p.stem


def mead_key(path: str | PurePath) -> str:
    """EmoBox key of a MEAD file: `M040/audio/neutral/level_1/034.m4a` -> `mead-M040-neutral-level-1-034`."""
    speaker, emotion, level, clip = parse_mead_path(path)
    return f"mead-{speaker}-{emotion}-level-{level}-{clip}"


def sex_of_speaker(speaker: str) -> str:
    """MEAD speakers: `M###` male, `W###` female."""
    return "male" if speaker.startswith("M") else "female"


def check_tree(root: Path) -> list[Path]:
    """The speaker folders (`M###`/`W###`) of a MEAD root, or a UserError naming what was expected."""
    root = Path(root)
    speakers = sorted(p for p in root.iterdir() if _SPEAKER.match(p.name) and p.is_dir()) if root.is_dir() else []
    if not any((p / "audio").is_dir() or (p / "audio.tar").is_file() for p in speakers):
        raise UserError(
            f"sources.mead: {root} is not a MEAD folder "
            "(expected <speaker>/audio/<emotion>/level_<n>/<nnn>.m4a, speakers M### and W###)"
        )
    return speakers


def _wanted(key: str) -> bool:
    return key.split("-")[2] in MEAD_TO_EMOTION


def scan_mead(root: Path) -> Scan[Clip]:
    """Clips of the five emotions (no transcripts: ASR adds them later); problems; no decoding."""
    root = Path(root).absolute()
    split = read_split(EMOBOX)
    scan: Scan[Clip] = Scan()
    seen: set[str] = set()
    inside = RootCheck(root)  # symlinked files or folders may point out of the corpus
    for speaker_dir in check_tree(root):
        audio = speaker_dir / "audio"
        if not audio.is_dir():
            # MEAD ships audio.tar per speaker; its clips then also show up as missing manifest files.
            scan.reject(speaker_dir, AUDIO_NOT_EXTRACTED, "unpack audio.tar here")
            continue
        for path in visible_files(audio, recursive=True):
            if (parsed := scan.parsed(path, lambda p: parse_mead_path(p.relative_to(root)), BAD_NAME)) is None:
                continue
            speaker, emotion, level, number = parsed
            key = f"mead-{speaker}-{emotion}-level-{level}-{number}"
            seen.add(key)
            if emotion in UNUSED_EMOTIONS:
                scan.filter_out(f"mead_unused_emotion_{emotion}")
                continue
            if emotion not in MEAD_TO_EMOTION:
                scan.reject(path, BAD_NAME, f"unknown emotion folder {emotion!r}")
                continue
            clip = {
                "key": key,
                "corpus": "mead",
                "speaker": f"mead-{speaker}",
                "sex": sex_of_speaker(speaker),
                "emotion": MEAD_TO_EMOTION[emotion],
                "source_emotion": emotion,
                "intensity": f"level_{level}",
                "sentence": None,
                "transcript": None,
            }
            add_clip(scan, split, path, clip, inside)
    report_missing_files(scan, EMOBOX, root, seen, _wanted)
    return scan


# The corpus module's face, the same in all six (see `voxemoset.corpora`): the `sources.*` keys it reads, its reader.
ROOTS = ("mead",)
scan = scan_mead
