"""Flickr8kAudio: `flickr_audio/{wav2capt,wav2spk}.txt` + `flickr_audio/wavs/`, Flickr8k images, captions, splits.

`wav2capt.txt`: `<wav> <image>.jpg #<n>`; `wav2spk.txt`: `<wav> <speaker>`; `Flickr8k.token.txt`:
`<image>.jpg#<n>\\t<text>`; `Flickr_8k.{train,dev,test}Images.txt`: one image name a line. The text files sit in
the root or in `Flickr8k_text/`; images in `Flicker8k_Dataset/` (sic; `Flickr8k_Dataset/` is accepted too).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath

from voxemoset.corpora.emobox import visible_files
from voxemoset.corpora.human_read import (
    AUDIO_MISSING,
    BAD_ENTRY,
    CAPTION_WITHOUT_AUDIO,
    DUPLICATE,
    NOT_IN_SPLIT,
    PATH_OUTSIDE_ROOT,
    WAV_WITHOUT_CAPTION,
    Utterance,
    confined,
    read_lines,
)
from voxemoset.corpora.scan import RootCheck, Scan
from voxemoset.errors import UserError

AUDIO_DIR = "flickr_audio"
WAV_DIR = "flickr_audio/wavs"
WAV2CAPT = "flickr_audio/wav2capt.txt"
WAV2SPK = "flickr_audio/wav2spk.txt"
IMAGE_DIRS = ("Flicker8k_Dataset", "Flickr8k_Dataset")
TEXT_DIR = "Flickr8k_text"
TOKENS = "Flickr8k.token.txt"
# Published split -> (Flickr8k's name, its image list).
SPLIT_FILES = {
    "train": ("train", "Flickr_8k.trainImages.txt"),
    "validation": ("dev", "Flickr_8k.devImages.txt"),
    "test": ("test", "Flickr_8k.testImages.txt"),
}
_WAV2CAPT_LINE = re.compile(r"^(?P<wav>\S+\.wav)\s+(?P<image>\S+)\s+#(?P<n>\d+)$")
_TOKEN_LINE = re.compile(r"^(?P<image>[^#\s]+)#(?P<n>\d+)\s+(?P<text>.*)$")


def _text_file(root: Path, name: str) -> Path | None:
    for path in (root / name, root / TEXT_DIR / name):
        if path.is_file():
            return path
    return None


def locate(root: Path) -> dict[str, Path]:
    """Every file and folder the reader needs, or one UserError listing all that are missing."""
    found: dict[str, Path | None] = {
        "wavs": root / WAV_DIR if (root / WAV_DIR).is_dir() else None,
        "wav2capt": root / WAV2CAPT if (root / WAV2CAPT).is_file() else None,
        "images": next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None),
        "tokens": _text_file(root, TOKENS),
        **{split: _text_file(root, name) for split, (_, name) in SPLIT_FILES.items()},
    }
    wanted = {"wavs": WAV_DIR + "/", "wav2capt": WAV2CAPT, "images": IMAGE_DIRS[0] + "/", "tokens": TOKENS,
              **{split: name for split, (_, name) in SPLIT_FILES.items()}}  # fmt: skip
    missing = [wanted[k] for k, v in found.items() if v is None]
    if missing:
        raise UserError(f"sources.flickr8k: {root} is not a Flickr8k + Flickr8kAudio layout, missing: "
                        f"{', '.join(missing)} (text files may sit in {TEXT_DIR}/)")  # fmt: skip
    speakers = root / WAV2SPK
    return {**found, "wav2spk": speakers if speakers.is_file() else None}  # type: ignore[dict-item]


def read_splits(files: dict[str, Path], scan: Scan) -> dict[str, str]:
    """Image name -> published split; an image listed twice keeps its first split and the second is reported."""
    splits: dict[str, str] = {}
    for split in SPLIT_FILES:
        for number, name in read_lines(files[split], scan):
            if splits.setdefault(name, split) != split:
                scan.reject(f"{files[split]}:{number}", BAD_ENTRY, f"{name} is already in {splits[name]}")
    return splits


def read_captions(path: Path, scan: Scan) -> dict[str, tuple[str, str]]:
    """`<image>#<n>` -> (caption text, `<file>:<line>` it came from)."""
    captions: dict[str, tuple[str, str]] = {}
    for number, line in read_lines(path, scan):
        m = _TOKEN_LINE.match(line)
        if m is None or not m["text"].strip():
            scan.reject(f"{path}:{number}", BAD_ENTRY, "not `<image>.jpg#<n><TAB><caption>`")
            continue
        captions[f"{m['image']}#{int(m['n'])}"] = (m["text"].strip(), f"{path}:{number}")
    return captions


def read_speakers(path: Path | None, scan: Scan) -> dict[str, str]:
    """wav name -> speaker id (wav2spk.txt is optional: without it, speakers are unknown)."""
    if path is None:
        return {}
    pairs = (line.split() for _, line in read_lines(path, scan))
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def _add_line(scan: Scan, ctx: dict, where: str, m: re.Match) -> None:
    """One wav2capt line: an utterance, or a problem saying why not."""
    wav = confined(ctx["files"]["wavs"], m["wav"], ctx["in_root"])
    image = confined(ctx["files"]["images"], m["image"], ctx["in_root"])
    key = f"{m['image']}#{int(m['n'])}"
    if wav is not None:
        ctx["used_wavs"].add(str(wav))
    ctx["used_captions"].add(key)
    caption, split = ctx["captions"].get(key), ctx["splits"].get(m["image"])
    uid = f"flickr8k-{PurePath(m['wav']).stem}"
    source = str(wav) if wav is not None else where
    if wav is None or image is None:
        scan.reject(source, PATH_OUTSIDE_ROOT, f"{m['wav'] if wav is None else m['image']} resolves outside the root")
    elif uid in ctx["ids"]:
        scan.reject(source, DUPLICATE, f"{m['wav']} listed again at {where}")
    elif caption is None:
        scan.reject(source, WAV_WITHOUT_CAPTION, f"{TOKENS} has no caption {key} ({where})")
    elif split is None:
        scan.reject(source, NOT_IN_SPLIT, f"{m['image']} is in no Flickr_8k.*Images.txt")
    elif str(wav) not in ctx["wavs"]:
        scan.reject(source, AUDIO_MISSING, f"{m['wav']} not found ({where})")
    else:
        ctx["ids"].add(uid)
        scan.items.append(Utterance(
            id=uid, split=split, source_split=SPLIT_FILES[split][0], image_id=PurePath(m["image"]).stem,
            image_path=str(image), wav_path=str(wav), caption=caption[0], caption_index=int(m["n"]),
            speaker=ctx["speakers"].get(m["wav"]), source=where,
        ))  # fmt: skip


def scan_flickr8k(root: Path) -> Scan[Utterance]:
    """Every Flickr8kAudio utterance with its Flickr8k split (no decoding), and a problem for each unusable one."""
    root = Path(root).absolute()
    files = locate(root)
    scan: Scan[Utterance] = Scan()
    ctx = {
        "files": files, "in_root": RootCheck(root), "splits": read_splits(files, scan),
        "captions": read_captions(files["tokens"], scan), "speakers": read_speakers(files["wav2spk"], scan),
        "wavs": {str(p) for p in visible_files(files["wavs"]) if p.suffix.lower() == ".wav"},
        "used_wavs": set(), "used_captions": set(), "ids": set(),
    }  # fmt: skip
    for number, line in read_lines(files["wav2capt"], scan):
        m = _WAV2CAPT_LINE.match(line)
        if m is None:
            scan.reject(f"{files['wav2capt']}:{number}", BAD_ENTRY, "not `<wav> <image>.jpg #<n>`")
            continue
        _add_line(scan, ctx, f"{files['wav2capt']}:{number}", m)
    for key, (_, where) in sorted(ctx["captions"].items()):
        if key not in ctx["used_captions"]:
            scan.reject(where, CAPTION_WITHOUT_AUDIO, f"no wav2capt.txt line records caption {key}")
    for wav in sorted(ctx["wavs"] - ctx["used_wavs"]):
        scan.reject(wav, WAV_WITHOUT_CAPTION, "no wav2capt.txt line names it")
    return scan


def check_tree(root: Path) -> None:
    """One UserError listing every file or folder the reader needs and does not find (nothing is scanned)."""
    locate(Path(root).absolute())


def media_roots(root: Path) -> tuple[Path, Path]:
    """(image root, audio root): nothing outside them is read."""
    return root, root


# The corpus module's face, the same in all six (see `voxemoset.corpora`): the `sources.*` keys it reads, its reader.
ROOTS = ("flickr8k",)
scan = scan_flickr8k
