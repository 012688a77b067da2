"""RAVDESS speech: `Actor_XX/03-01-EE-II-SS-RR-AA.wav` to clips with EmoBox fold-1 splits."""

from __future__ import annotations

import re
from pathlib import Path, PurePath

from voxemoset.corpora.emobox import (
    EmoBoxManifest,
    add_clip,
    load_sentences,
    read_split,
    report_missing_files,
    visible_files,
)
from voxemoset.corpora.scan import Clip, RootCheck, Scan
from voxemoset.errors import UserError

# EmoBox's wav paths start with the prefix; the reader's root sits below it (the unpacked
# Audio_Speech_Actors_01-24 folder, which holds Actor_XX/ directly).
EMOBOX = EmoBoxManifest(
    "ravdess",
    "ravdess_train_fold_1.jsonl.gz",
    "ravdess_test_fold_1.jsonl.gz",
    "downloads/ravdess/audio/Audio_Speech_Actors_01-24/",
)
# Filename emotion codes (third field) -> the names RAVDESS's documentation uses (kept as `source_emotion`).
RAVDESS_EMOTION_NAMES = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised",
}  # fmt: skip
RAVDESS_TO_EMOTION = {"03": "enjoyment", "05": "anger", "07": "disgust", "06": "fear", "04": "sadness"}
# Intensity codes (fourth field) as lower-case words.
RAVDESS_INTENSITY = {"01": "normal", "02": "strong"}
_STEM = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")

NOT_IN_SPLIT = "ravdess_not_in_split"
BAD_NAME = "ravdess_bad_name"
MANIFEST_FILE_MISSING = "ravdess_manifest_file_missing"
PATH_OUTSIDE_ROOT = "ravdess_path_outside_root"
NOT_AUDIO_SPEECH = "ravdess_not_audio_speech"
_ACTOR_DIR = re.compile(r"^Actor_(\d{2})$")
# Where the actor folders may sit below the given root: the unpacked Audio_Speech_Actors_01-24.zip
# itself, or a parent holding it (as EmoBox's downloads/ravdess/audio/ does).
_ACTOR_PARENTS = ("", "Audio_Speech_Actors_01-24", "audio/Audio_Speech_Actors_01-24")


def parse_ravdess_name(path: str | PurePath) -> tuple[str, ...]:
    """The seven two-digit fields (modality, channel, emotion, intensity, statement, repetition, actor)."""
    match = _STEM.match(PurePath(path).stem)
    if match is None or PurePath(path).suffix.lower() != ".wav":
        raise ValueError(f"not a RAVDESS name MM-VV-EE-II-SS-RR-AA.wav: {PurePath(path).name}")
    return match.groups()


def ravdess_key(path: str | PurePath) -> str:
    """EmoBox key of a RAVDESS file: `03-01-05-01-02-01-18.wav` -> `ravdess-03-01-05-01-02-01-18`."""
    return "ravdess-" + "-".join(parse_ravdess_name(path))


def sex_of_actor(actor: str | int) -> str:
    """RAVDESS actors: odd numbers are male, even female."""
    return "male" if int(actor) % 2 else "female"


def check_tree(root: Path) -> Path:
    """The folder holding `Actor_XX/`, or a UserError naming what was expected."""
    for sub in _ACTOR_PARENTS:
        base = Path(root) / sub if sub else Path(root)
        if base.is_dir() and any(_ACTOR_DIR.match(p.name) and p.is_dir() for p in base.iterdir()):
            return base
    raise UserError(
        f"sources.ravdess: {root} is not a RAVDESS speech folder "
        "(expected Actor_01/ ... Actor_24/ holding 03-01-EE-II-SS-RR-AA.wav)"
    )


def _wanted(key: str) -> bool:
    return key.split("-")[3] in RAVDESS_TO_EMOTION


def scan_ravdess(root: Path) -> Scan[Clip]:
    """Audio-only speech clips of the five emotions; song/video counted as filtered (no decoding)."""
    root = Path(root).absolute()
    base = check_tree(root)
    split, texts = read_split(EMOBOX), load_sentences()["ravdess"]
    scan: Scan[Clip] = Scan()
    seen: set[str] = set()
    inside = RootCheck(root)  # symlinked files or folders may point out of the corpus
    for actor_dir in sorted(p for p in base.iterdir() if _ACTOR_DIR.match(p.name) and p.is_dir()):
        for path in visible_files(actor_dir):
            if path.suffix.lower() in (".mp4", ".avi"):
                scan.filter_out(NOT_AUDIO_SPEECH)  # RAVDESS video files, if the zips were merged
                continue
            if (parsed := scan.parsed(path, parse_ravdess_name, BAD_NAME)) is None:
                continue
            modality, channel, emo, level, statement, _rep, actor = parsed
            if modality != "03" or channel != "01":
                scan.filter_out(NOT_AUDIO_SPEECH)  # song (channel 02) or audio-video modalities
                continue
            key = "ravdess-" + path.stem
            seen.add(key)
            if actor != actor_dir.name[-2:] or emo not in RAVDESS_EMOTION_NAMES:
                scan.reject(path, BAD_NAME, "actor differs from folder or unknown emotion")
                continue
            if emo not in RAVDESS_TO_EMOTION:
                scan.filter_out(f"ravdess_unused_emotion_{RAVDESS_EMOTION_NAMES[emo]}")
                continue
            if level not in RAVDESS_INTENSITY or statement not in texts:
                scan.reject(path, BAD_NAME, "unknown intensity or statement code")
                continue
            clip = {
                "key": key,
                "corpus": "ravdess",
                "speaker": f"ravdess-{actor}",
                "sex": sex_of_actor(actor),
                "emotion": RAVDESS_TO_EMOTION[emo],
                "source_emotion": RAVDESS_EMOTION_NAMES[emo],
                "intensity": RAVDESS_INTENSITY[level],
                "sentence": statement,
                "transcript": texts[statement],
            }
            add_clip(scan, split, path, clip, inside)
    report_missing_files(scan, EMOBOX, base, seen, _wanted)
    return scan


# The corpus module's face, the same in all six (see `voxemoset.corpora`): the `sources.*` keys it reads, its reader.
ROOTS = ("ravdess",)
scan = scan_ravdess
