"""EmoSet-118K: split files to entries with VoxEmoset's five emotions and split (train+val -> train)."""

from __future__ import annotations

import json
from pathlib import Path

from voxemoset.corpora.scan import RootCheck, Scan, printable
from voxemoset.errors import UserError
from voxemoset.rows import ATTRIBUTE_COLUMNS

# EmoSet's eight labels; awe and contentment have no counterpart in the speech corpora, so they drop.
EMOSET_LABELS: tuple[str, ...] = (
    "amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness",
)  # fmt: skip
EMOSET_TO_EMOTION: dict[str, str] = {
    "amusement": "enjoyment",
    "excitement": "enjoyment",
    "anger": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "sadness": "sadness",
}
# EmoSet's val split is folded into train, as the paper's counts imply (see shared README).
SPLIT_FILES = {"train": "train", "val": "train", "test": "test"}
PATH_OUTSIDE_ROOT = "images_path_outside_root"
# Real annotation files are under 1 KB; reading a huge or endless one whole would only stall the shard.
MAX_ANNOTATION_BYTES = 1 << 20


def check_tree(root: Path) -> None:
    """Fail with one clear line unless `root` looks like an EmoSet-118K folder."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise UserError(f"sources.emoset: {root} is a file, not a folder (expected the EmoSet-118K folder)")
    if not root.is_dir():
        raise UserError(f"sources.emoset: folder not found: {root}")
    missing = [n for n in ("train.json", "test.json", "image") if not (root / n).exists()]
    if missing:
        raise UserError(
            f"sources.emoset: {root} is not an EmoSet-118K tree (missing {', '.join(missing)}; "
            "expected info.json, train.json, val.json, test.json, image/, annotation/)"
        )


def _clean(x: object) -> bool:
    # Lone surrogates cannot be written to Parquet and NUL cannot be in a path: such a row is bad.
    return isinstance(x, str) and "\x00" not in x and printable(x) == x


def _parse_row(row: object) -> tuple[str, str, str] | None:
    """(emotion, image_path, annotation_path) from a 3-field (released) or 4-field (documented) row."""
    if not isinstance(row, list) or len(row) not in (3, 4) or not all(_clean(x) for x in row):
        return None
    return (row[0], row[1], row[2]) if len(row) == 3 else (row[0], row[2], row[3])


def scan_emoset(root: Path) -> Scan[dict]:
    """Entries (dicts: image_id, split, emoset_split, emotion, emoset_emotion, paths) and problems."""
    root = Path(root)
    check_tree(root)
    scan: Scan[dict] = Scan()
    seen: set[str] = set()
    inside = RootCheck(root)
    for emoset_split, split in SPLIT_FILES.items():
        split_file = root / f"{emoset_split}.json"
        if not split_file.is_file():
            continue
        try:
            rows = json.loads(split_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"sources.emoset: {split_file} is not valid JSON ({e})") from None
        if not isinstance(rows, list):
            raise UserError(f"sources.emoset: {split_file} should hold a JSON list of rows")
        for i, row in enumerate(rows):
            source = f"{split_file.name}#{i}"
            parsed = _parse_row(row)
            if parsed is None:
                scan.reject(source, "images_bad_split_row", json.dumps(row)[:200])
                continue
            label, image_rel, ann_rel = parsed
            if label not in EMOSET_LABELS:
                scan.reject(source, "images_unknown_emotion", label)
                continue
            if label not in EMOSET_TO_EMOTION:
                scan.filter_out(f"emoset_{label}")
                continue
            outside = [p for p in (image_rel, ann_rel) if not inside(root / p)]
            if outside:
                # Absolute, `..`-climbing or symlinked out of the tree: rejected here, so never opened.
                scan.reject(source, PATH_OUTSIDE_ROOT, ", ".join(outside))
                continue
            image_id = Path(image_rel).stem
            if image_id in seen:
                scan.reject(source, "images_duplicate_id", image_id)
                continue
            seen.add(image_id)
            scan.items.append(
                {
                    "image_id": image_id,
                    "split": split,
                    "emoset_split": emoset_split,
                    "emotion": EMOSET_TO_EMOTION[label],
                    "emoset_emotion": label,
                    "image_path": str(root / image_rel),
                    "annotation_path": str(root / ann_rel),
                }
            )
    return scan


def _number(v: object) -> float | None:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return None
    try:
        return float(v)
    except OverflowError:  # an integer too large for a float
        return None


def _text(v: object) -> str | None:
    return v if isinstance(v, str) and printable(v) == v else None


def read_annotation(path: Path) -> tuple[str, dict]:
    """EmoSet attributes of one image: ("ok" | "missing" | "invalid", attributes with None where absent)."""
    attrs: dict = dict.fromkeys(ATTRIBUTE_COLUMNS)
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(MAX_ANNOTATION_BYTES + 1)
        if len(raw) > MAX_ANNOTATION_BYTES:
            return "invalid", attrs
        data = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        return "missing", attrs
    except (OSError, ValueError, RecursionError):
        # ValueError covers bad JSON, bad UTF-8 and over-long integers; RecursionError deep nesting.
        return "invalid", attrs
    if not isinstance(data, dict):
        return "invalid", attrs
    for key in ("brightness", "colorfulness"):
        attrs[key] = _number(data.get(key))
    for key in ("scene", "facial_expression", "human_action"):
        attrs[key] = _text(data.get(key))
    obj = data.get("object")
    if isinstance(obj, str):
        obj = [obj]
    attrs["object"] = [o for o in obj if _text(o) is not None] if isinstance(obj, list) else None
    return "ok", attrs


# The corpus module's face, the same in all six (see `voxemoset.corpora`): the `sources.*` keys it reads, its reader.
ROOTS = ("emoset",)
scan = scan_emoset
