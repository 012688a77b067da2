"""EmoSet-118K: split files to entries with VoxEmoset's five emotions and split (train+val -> train)."""

from __future__ import annotations

import json
from pathlib import Path

from voxemoset.emotions import EMOSET_LABELS, EMOSET_TO_EMOTION
from voxemoset.errors import UserError
from voxemoset.sources.base import Problem, Scan

# EmoSet's val split is folded into train, as the paper's counts imply (see shared README).
SPLIT_FILES = {"train": "train", "val": "train", "test": "test"}
ATTRIBUTES = ("brightness", "colorfulness", "scene", "object", "facial_expression", "human_action")


def check_tree(root: Path) -> None:
    """Fail with one clear line unless `root` looks like an EmoSet-118K folder."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"sources.emoset: folder not found: {root}")
    missing = [n for n in ("train.json", "test.json", "image") if not (root / n).exists()]
    if missing:
        raise UserError(
            f"sources.emoset: {root} is not an EmoSet-118K tree (missing {', '.join(missing)}; "
            "expected info.json, train.json, val.json, test.json, image/, annotation/)"
        )


def _parse_row(row: object) -> tuple[str, str, str] | None:
    """(emotion, image_path, annotation_path) from a 3-field (released) or 4-field (documented) row."""
    if not isinstance(row, list) or len(row) not in (3, 4) or not all(isinstance(x, str) for x in row):
        return None
    return (row[0], row[1], row[2]) if len(row) == 3 else (row[0], row[2], row[3])


def scan_emoset(root: Path) -> Scan[dict]:
    """Entries (dicts: image_id, split, emoset_split, emotion, emoset_emotion, paths) and problems."""
    root = Path(root)
    check_tree(root)
    scan: Scan[dict] = Scan()
    seen: set[str] = set()
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
                scan.problems.append(Problem(source, "images_bad_split_row", json.dumps(row)[:200]))
                continue
            label, image_rel, ann_rel = parsed
            if label not in EMOSET_LABELS:
                scan.problems.append(Problem(source, "images_unknown_emotion", label))
                continue
            if label not in EMOSET_TO_EMOTION:
                scan.filter_out(f"emoset_{label}")
                continue
            image_id = Path(image_rel).stem
            if image_id in seen:
                scan.problems.append(Problem(source, "images_duplicate_id", image_id))
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


def read_annotation(path: Path) -> tuple[str, dict]:
    """EmoSet attributes of one image: ("ok" | "missing" | "invalid", attributes with None where absent)."""
    attrs: dict = dict.fromkeys(ATTRIBUTES)
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return "missing", attrs
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return "invalid", attrs
    if not isinstance(data, dict):
        return "invalid", attrs
    for key in ("brightness", "colorfulness"):
        v = data.get(key)
        attrs[key] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    for key in ("scene", "facial_expression", "human_action"):
        v = data.get(key)
        attrs[key] = v if isinstance(v, str) else None
    obj = data.get("object")
    if isinstance(obj, str):
        obj = [obj]
    attrs["object"] = [o for o in obj if isinstance(o, str)] if isinstance(obj, list) else None
    return "ok", attrs
