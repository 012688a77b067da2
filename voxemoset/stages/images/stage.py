"""`images` stage: validate and decode each EmoSet image once; store RGB bytes, metadata, attributes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa

from voxemoset.config import Config, output_settings, require_dir
from voxemoset.corpora.emoset import PATH_OUTSIDE_ROOT, read_annotation, scan_emoset
from voxemoset.corpora.scan import inside_root
from voxemoset.images import ImageReject, read_image_file
from voxemoset.rows import ATTRIBUTE_FIELDS, MEDIA
from voxemoset.store.keys import file_fingerprint
from voxemoset.store.runner import Plan, ShardJob, ShardOutput, StageBase, job_key
from voxemoset.store.upstream import Upstream

SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("split", pa.string()),
        ("emoset_split", pa.string()),
        ("emotion", pa.string()),
        ("emoset_emotion", pa.string()),
        ("image", MEDIA),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("source_format", pa.string()),
        ("source_mode", pa.string()),
        ("source_sha256", pa.string()),
        ("annotation_status", pa.string()),
        *ATTRIBUTE_FIELDS,
    ]
)


def process_entry(entry: dict, cfg, root: Path) -> dict:
    """One EmoSet entry to one output row, or ImageReject; nothing outside `root` is opened."""
    path = Path(entry["image_path"])
    for p in (path, Path(entry["annotation_path"])):
        # The scan rejects escaping rows already; checked again in case the tree changed since planning.
        if not inside_root(p, root):
            raise ImageReject(PATH_OUTSIDE_ROOT, str(p))
    data, stored, meta = read_image_file(path, cfg)
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
    schema = SCHEMA

    def plan(self, config: Config, upstream: Upstream) -> Plan:
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
