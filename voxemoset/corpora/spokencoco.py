"""SpokenCOCO: `SpokenCOCO_{train,val}.json` + `wavs/`, images in a COCO-2014 root, Karpathy's split.

Karpathy's `dataset_coco.json` (in the COCO root) decides each image's split, whichever SpokenCOCO file lists
it: val2014 images go to train (restval), val and test alike. restval counts as train (113,287 images).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from voxemoset.corpora.emobox import visible_files
from voxemoset.corpora.human_read import (
    AUDIO_MISSING,
    BAD_ENTRY,
    CAPTION_WITHOUT_AUDIO,
    DUPLICATE,
    NOT_IN_SPLIT,
    NOT_UTF8,
    PATH_OUTSIDE_ROOT,
    WAV_WITHOUT_CAPTION,
    Utterance,
    confined,
    read_json,
    undecodable,
)
from voxemoset.corpora.scan import RootCheck, Scan
from voxemoset.errors import UserError

JSON_FILES = ("SpokenCOCO_train.json", "SpokenCOCO_val.json")
WAV_DIR = "wavs"
KARPATHY_FILE = "dataset_coco.json"
KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "validation", "test": "test"}


def check_tree(root: Path, coco: Path) -> None:
    """One UserError listing everything missing from the SpokenCOCO and COCO roots."""
    missing = [f"sources.spokencoco: {Path(root) / n}" for n in (*JSON_FILES, WAV_DIR) if not (Path(root) / n).exists()]
    if not (Path(coco) / KARPATHY_FILE).is_file():
        missing.append(f"sources.coco: {Path(coco) / KARPATHY_FILE} (Karpathy's split file)")
    if missing:
        raise UserError("not a SpokenCOCO + COCO-2014 layout, missing: " + "; ".join(missing))


def read_karpathy(coco: Path, scan: Scan) -> dict[str, str]:
    """`<filepath>/<filename>` (e.g. `val2014/COCO_val2014_….jpg`) -> Karpathy split (train/restval/val/test)."""
    path = Path(coco) / KARPATHY_FILE
    data = read_json(path, "sources.coco")
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise UserError(f"sources.coco: {path} has no `images` list (is it Karpathy's dataset_coco.json?)")
    splits: dict[str, str] = {}
    for i, image in enumerate(images):
        ok = isinstance(image, dict) and all(isinstance(image.get(k), str) for k in ("filepath", "filename", "split"))
        if not ok or image["split"] not in KARPATHY_SPLITS:
            scan.reject(f"{path}#images[{i}]", BAD_ENTRY, "needs string filepath, filename and a known split")
            continue
        splits[os.path.normpath(f"{image['filepath']}/{image['filename']}")] = image["split"]
    return splits


class _Reader:
    """One pass over the SpokenCOCO json files: utterances with Karpathy splits, and every problem met."""

    def __init__(self, root: Path, coco: Path, scan: Scan):
        self.root, self.coco, self.scan = root, coco, scan
        self.splits = read_karpathy(coco, scan)
        self.wavs = {str(p) for p in visible_files(root / WAV_DIR, recursive=True) if p.suffix.lower() == ".wav"}
        self.used: set[str] = set()
        self.ids: set[str] = set()
        self.images: set[str] = set()  # every image the json files name, heard or not
        self.in_root, self.in_coco = RootCheck(root), RootCheck(coco)

    def read_file(self, name: str) -> None:
        path = self.root / name
        data = read_json(path, "sources.spokencoco")
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise UserError(f"sources.spokencoco: {path} has no `data` list (is it a SpokenCOCO json file?)")
        for i, entry in enumerate(entries):
            where = f"{path}#data[{i}]"
            if not (isinstance(entry, dict) and isinstance(entry.get("image"), str)
                    and isinstance(entry.get("captions"), list)):  # fmt: skip
                self.scan.reject(where, BAD_ENTRY, "needs a string `image` and a `captions` list")
                continue
            for k, caption in enumerate(entry["captions"]):
                self.add(entry["image"], k, caption, f"{where}.captions[{k}]")

    def add(self, image: str, index: int, caption: object, where: str) -> None:
        """One caption entry: an utterance, or a problem naming its wav (or json entry) and why."""
        if not isinstance(caption, dict):
            self.scan.reject(where, BAD_ENTRY, "caption entry is not an object")
            return
        wav_rel = caption.get("wav") if isinstance(caption.get("wav"), str) else ""
        wav = confined(self.root, wav_rel, self.in_root)
        if wav is not None:
            self.used.add(str(wav))
        source = str(wav) if wav is not None else where
        text, uttid = caption.get("text"), caption.get("uttid") or PurePath(wav_rel).stem
        image_path = confined(self.coco, image, self.in_coco)
        split = self.splits.get(os.path.normpath(image))
        self.images.add(os.path.normpath(image))
        if not wav_rel:
            self.scan.reject(where, CAPTION_WITHOUT_AUDIO, f"caption of {image} names no wav")
        elif undecodable(image, *caption.values()):
            self.scan.reject(source, NOT_UTF8, f"{where}: text, speaker, uttid, wav or image is not UTF-8")
        elif wav is None or image_path is None:
            bad = wav_rel if wav is None else image
            self.scan.reject(source, PATH_OUTSIDE_ROOT, f"{bad} resolves outside its root")
        elif not isinstance(text, str) or not text.strip():
            self.scan.reject(source, WAV_WITHOUT_CAPTION, f"{where} has no caption text")
        elif not isinstance(uttid, str) or f"spokencoco-{uttid}" in self.ids:
            self.scan.reject(source, DUPLICATE, f"uttid {uttid!r} again in {where}")
        elif split is None:
            self.scan.reject(source, NOT_IN_SPLIT, f"{image} is in no Karpathy split")
        elif str(wav) not in self.wavs:
            self.scan.reject(source, AUDIO_MISSING, f"{wav_rel} not found (caption of {image})")
        else:
            self.ids.add(f"spokencoco-{uttid}")
            speaker = caption.get("speaker")
            self.scan.items.append(Utterance(
                id=f"spokencoco-{uttid}", split=KARPATHY_SPLITS[split], source_split=split,
                image_id=PurePath(image).stem, image_path=str(image_path), wav_path=str(wav),
                caption=text.strip(), caption_index=index, speaker=None if speaker is None else str(speaker),
                source=where,
            ))  # fmt: skip


def scan_spokencoco(root: Path, coco: Path) -> Scan[Utterance]:
    """Every SpokenCOCO utterance with its Karpathy split (no decoding), and a problem for each unusable one."""
    root, coco = Path(root).absolute(), Path(coco).absolute()
    check_tree(root, coco)
    scan: Scan[Utterance] = Scan()
    reader = _Reader(root, coco, scan)
    for name in JSON_FILES:
        reader.read_file(name)
    for wav in sorted(reader.wavs - reader.used):
        scan.reject(wav, WAV_WITHOUT_CAPTION, "no caption in SpokenCOCO_*.json names it")
    unheard = len(reader.splits.keys() - reader.images)
    if unheard:
        scan.filtered["corpus_karpathy_image_without_captions"] = unheard
    return scan


def media_roots(root: Path, coco: Path) -> tuple[Path, Path]:
    """(image root, audio root): nothing outside them is read."""
    return coco, root


# The corpus module's face, the same in all six (see `voxemoset.corpora`): the `sources.*` keys it reads, its reader.
ROOTS = ("spokencoco", "coco")
scan = scan_spokencoco
