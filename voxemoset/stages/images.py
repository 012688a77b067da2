"""`images` stage: validate and decode each EmoSet image once; store RGB bytes, metadata, attributes."""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import pyarrow as pa
from PIL import Image, ImageFile, UnidentifiedImageError

from voxemoset.config import Config, output_settings, require_dir
from voxemoset.sources.base import inside_root
from voxemoset.sources.emoset import PATH_OUTSIDE_ROOT, read_annotation, scan_emoset
from voxemoset.store.keys import file_fingerprint
from voxemoset.store.runner import Plan, ShardJob, ShardOutput, StageBase, job_key

# Formats kept byte for byte when already RGB; anything else is re-encoded losslessly as PNG.
KEEP_FORMATS = {"JPEG", "PNG"}

SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("split", pa.string()),
        ("emoset_split", pa.string()),
        ("emotion", pa.string()),
        ("emoset_emotion", pa.string()),
        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("source_format", pa.string()),
        ("source_mode", pa.string()),
        ("source_sha256", pa.string()),
        ("annotation_status", pa.string()),
        ("brightness", pa.float64()),
        ("colorfulness", pa.float64()),
        ("scene", pa.string()),
        ("object", pa.list_(pa.string())),
        ("facial_expression", pa.string()),
        ("human_action", pa.string()),
    ]
)


class ImageReject(Exception):
    """An image that cannot be used; `reason` is the rejects constant."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels become white rather than whatever colour the alpha hid.
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")


def _os_reject(e: OSError, otherwise: str) -> ImageReject:
    reason = "images_truncated" if "truncated" in str(e).lower() else otherwise
    return ImageReject(reason, str(e))


def _open(data: bytes) -> Image.Image:
    """Image.open, with anything a file's bytes can make it raise turned into an ImageReject."""
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageReject("images_unreadable", "not a recognised image format") from None
    except Image.DecompressionBombError as e:
        raise ImageReject("images_too_large", str(e)) from None
    except OSError as e:
        # Pillow parses headers here: a file cut inside its header fails now, not in load().
        raise _os_reject(e, "images_unreadable") from None
    except Exception as e:  # noqa: BLE001 - plugins raise SyntaxError, ValueError, struct.error... on bad bytes
        raise ImageReject("images_unreadable", f"{type(e).__name__}: {e}") from None


def decode_image(data: bytes, max_pixels: int, min_side: int) -> tuple[bytes, dict]:
    """Check and decode image bytes once; return bytes to store (RGB JPEG/PNG) and metadata."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    img = _open(data)
    width, height = img.size
    if width * height > max_pixels:
        raise ImageReject("images_too_large", f"{width}x{height} exceeds {max_pixels} pixels")
    if min(width, height) < min_side:
        raise ImageReject("images_too_small", f"{width}x{height} below {min_side} px")
    fmt, mode = img.format or "", img.mode
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            if fmt in KEEP_FORMATS and mode == "RGB":
                stored = data
            else:
                buf = io.BytesIO()
                _to_rgb(img).save(buf, format="PNG")
                stored = buf.getvalue()
    except OSError as e:
        raise _os_reject(e, "images_decode_error") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise ImageReject("images_too_large", str(e)) from None
    except Exception as e:  # noqa: BLE001 - any decoder failure is this input's problem, not the run's
        raise ImageReject("images_decode_error", f"{type(e).__name__}: {e}") from None
    meta = {"width": width, "height": height, "source_format": fmt, "source_mode": mode}
    return stored, meta


def process_entry(entry: dict, cfg, root: Path) -> dict:
    """One EmoSet entry to one output row, or ImageReject; nothing outside `root` is opened."""
    path = Path(entry["image_path"])
    for p in (path, Path(entry["annotation_path"])):
        # The scan rejects escaping rows already; checked again in case the tree changed since planning.
        if not inside_root(p, root):
            raise ImageReject(PATH_OUTSIDE_ROOT, str(p))
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageReject("images_missing", "file not found") from None
    except OSError as e:
        raise ImageReject("images_unreadable", str(e)) from None
    if size > cfg.max_file_bytes:
        raise ImageReject("images_too_large", f"{size} bytes exceeds {cfg.max_file_bytes}")
    try:
        data = path.read_bytes()
    except OSError as e:  # a folder, no permission, a bad sector: this file's problem, not the run's
        raise ImageReject("images_unreadable", str(e)) from None
    if not data:
        raise ImageReject("images_empty_file", "0 bytes")
    stored, meta = decode_image(data, cfg.max_pixels, cfg.min_side)
    status, attrs = read_annotation(Path(entry["annotation_path"]))
    ext = ".jpg" if stored is data and meta["source_format"] == "JPEG" else ".png"
    return {
        **{k: entry[k] for k in ("image_id", "split", "emoset_split", "emotion", "emoset_emotion")},
        "image": {"bytes": stored, "path": entry["image_id"] + ext},
        **meta,
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "annotation_status": status,
        **attrs,
    }


class ImagesStage(StageBase):
    """EmoSet split files -> validated image rows, one shard per `shard_size` images of a split."""

    name = "images"
    version = "1"

    def plan(self, config: Config) -> Plan:
        root = require_dir(config.sources.emoset, "sources.emoset")
        scan = scan_emoset(root)
        cfg = config.images
        per_split: dict[str, list[dict]] = {}
        for item in scan.items:
            per_split.setdefault(item["split"], []).append(item)
        for p in scan.problems:
            split = "test" if p.source.startswith("test.json") else "train"
            per_split.setdefault(split, []).append({"source": p.source, "reason": p.reason, "detail": p.detail})
        jobs = []
        for split in sorted(per_split):
            entries = sorted(per_split[split], key=lambda e: e.get("image_id") or e["source"])
            if cfg.limit_per_split:
                entries = entries[: cfg.limit_per_split]
            for k in range(0, len(entries), cfg.shard_size):
                chunk = entries[k : k + cfg.shard_size]
                fingerprint = [
                    [e, file_fingerprint(Path(e["image_path"])), file_fingerprint(Path(e["annotation_path"]))]
                    if "image_id" in e
                    else [e]
                    for e in chunk
                ]
                name = f"{split}-{k // cfg.shard_size:05d}"
                key = job_key(self, output_settings(cfg), None, fingerprint)
                # Split-file problems sort by their `<split>.json#N` source, after every image id (EmoSet ids start
                # with a label): the runner writes them after what `process` rejects, the order they had as inputs.
                items = [e for e in chunk if "image_id" in e]
                jobs.append(ShardJob(name, key, items, tuple(e for e in chunk if "image_id" not in e)))
        return Plan(jobs, dict(sorted(scan.filtered.items())))

    def process(self, job: ShardJob, model: None, config: Config) -> ShardOutput:
        rows, rejects = [], []
        for entry in job.inputs:
            try:
                rows.append(process_entry(entry, config.images, config.sources.emoset))
            except ImageReject as e:
                rejects.append({"source": entry["image_path"], "reason": e.reason, "detail": e.detail})
        return ShardOutput(pa.Table.from_pylist(rows, schema=SCHEMA), rejects)
