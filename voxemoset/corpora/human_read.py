"""What the human-read corpus readers share: the utterance they yield, the split names, reject reasons, text files."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from voxemoset.corpora.scan import RootCheck, Scan
from voxemoset.errors import UserError

# Published split names of every corpus (SpokenCOCO's Karpathy `val` and Flickr8k's `dev` are `validation`).
SPLITS = ("train", "validation", "test")

# Reject reasons: `corpus_<why>`, the same in both corpora.
NOT_IN_SPLIT = "corpus_image_not_in_split"
CAPTION_WITHOUT_AUDIO = "corpus_caption_without_audio"  # the caption names no recording at all
AUDIO_MISSING = "corpus_audio_missing"  # it names a wav that is not on disk
WAV_WITHOUT_CAPTION = "corpus_wav_without_caption"
PATH_OUTSIDE_ROOT = "corpus_path_outside_root"
BAD_ENTRY = "corpus_bad_entry"
NOT_UTF8 = "corpus_not_utf8"
DUPLICATE = "corpus_duplicate_utterance"
AUDIO_TRUNCATED = "corpus_audio_truncated"
AUDIO_EMPTY = "corpus_audio_empty"
AUDIO_UNREADABLE = "corpus_audio_unreadable"


def image_reason(images_reason: str) -> str:
    """The corpus reason for an images-stage reason: `images_truncated` -> `corpus_image_truncated`."""
    return "corpus_image_" + images_reason.removeprefix("images_")


@dataclass(frozen=True)
class Utterance:
    """One spoken caption of one image: absolute paths (checked to lie in their roots), text, speaker, split.

    `source_split` is the corpus's own split name (Karpathy's train/restval/val/test, Flickr8k's train/dev/test);
    `source` says where the utterance was listed (a json entry or a text file's line).
    """

    id: str
    split: str
    source_split: str
    image_id: str
    image_path: str
    wav_path: str
    caption: str
    caption_index: int
    speaker: str | None
    source: str


def read_json(path: Path, key: str) -> object:
    """A corpus's JSON file, or one UserError naming it and the config key (a whole-file problem is the user's).

    Bytes that are not UTF-8 come through as lone surrogates, so only the entries holding them are rejected
    (see `undecodable`), not the whole file.
    """
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8", "surrogateescape"))
    except FileNotFoundError:
        raise UserError(f"{key}: {path} not found") from None
    except (OSError, ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise UserError(f"{key}: {path} is not readable JSON ({type(e).__name__}: {str(e)[:200]})") from None


def undecodable(*values: object) -> bool:
    """Whether any of the strings holds bytes that were not UTF-8 (lone surrogates after `read_json`)."""
    for v in values:
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def read_lines(path: Path, scan: Scan) -> list[tuple[int, str]]:
    """(line number, stripped text) of each non-blank line; a line that is not UTF-8 is a problem, not a crash."""
    found = []
    for number, raw in enumerate(Path(path).read_bytes().splitlines(), start=1):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError as e:
            scan.reject(f"{path}:{number}", NOT_UTF8, str(e))
            continue
        if text:
            found.append((number, text.lstrip("\ufeff")))
    return found


def confined(root: Path, rel: str, inside: RootCheck) -> Path | None:
    """`root / rel` normalised, or None when it leaves `root` (absolute, `..`, or a symlink pointing out)."""
    if not rel or "\x00" in rel:
        return None
    path = Path(os.path.normpath(Path(root) / rel))
    return path if inside(path) else None
