"""`dataset` stage: gates utterances joined with their images, written as Hub-ready files plus a card.

One job per gates shard, in the manner of datatrove's writers: gates shard `<split>-NNNNN` (with images shard
`<split>-NNNNN`, where its pictures are) becomes `<out>/dataset/data/<split>-NNNNN-PPP.parquet`, byte-budgeted
parts named after it. A change to one gates shard rewrites its own files, which keep their names, and leaves every
other file's bytes alone, so `publish` uploads only those. The card is a cheap last step over every job's figures.
The job's own table is an index of the rows it published.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from voxemoset.audio import OUT_RATE
from voxemoset.config import Config
from voxemoset.departures import departures, measure
from voxemoset.emotions import EMOTIONS
from voxemoset.errors import UserError
from voxemoset.hub.features import ATTRIBUTE_COLUMNS, COLUMNS, emotion_index
from voxemoset.hub.shards import PartsWriter
from voxemoset.resources import prompt_path
from voxemoset.stages.dataset.card_files import write_card
from voxemoset.store.atomic import TMP_SUFFIX
from voxemoset.store.runner import Plan, ShardJob, ShardOutput, StageBase, job_key
from voxemoset.store.upstream import Upstream

SCHEMA = pa.schema([("id", pa.string()), ("split", pa.string()), ("image_id", pa.string()),
                    ("emotion", pa.string()), ("file", pa.string())])  # fmt: skip
IMAGE_COLUMNS = ("image_id", "image", *ATTRIBUTE_COLUMNS)
SORT_BATCH_ROWS = 256  # gates rows turned into Python objects at once


def dataset_dir(out: Path) -> Path:
    """Where the published dataset folder lives: `<out>/dataset`."""
    return Path(out) / "dataset"


def prompt_text(config: Config) -> str | None:
    """The captioning prompt the card quotes, if its file is there."""
    try:
        path = prompt_path(config.captions)
    except UserError:
        return None
    return path.read_text() if path.is_file() else None


def _published_earlier(upstream: Upstream) -> dict[str, list[str]]:
    """Per gates shard, the ids a shard before it (in name order) also holds: each id is published once, from its
    first shard, as when one job wrote the whole dataset. Only the id column is read."""
    seen: set[str] = set()
    found: dict[str, list[str]] = {}
    for gates in sorted(upstream.shards("gates"), key=lambda s: s.name):
        ids = pq.read_table(gates.path, columns=["id"]).column("id").to_pylist()
        if twice := sorted(seen.intersection(ids)):
            found[gates.name] = twice
        seen.update(ids)
    return found


def _audio_problem(data: bytes | None) -> str | None:
    """Why a clip cannot be published as 16 kHz mono audio, or None."""
    if not data:
        return "no audio bytes"
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError) as e:
        return f"unreadable audio: {e}"
    if info.samplerate != OUT_RATE or info.channels != 1:
        return f"{info.samplerate} Hz, {info.channels} channels (need {OUT_RATE} Hz mono)"
    return None


class DatasetStage(StageBase):
    """Gates shard k + images shard k -> `<out>/dataset/data/<k>-PPP.parquet`; then the card, README.md."""

    name = "dataset"
    # 2: the card records the config less speed-only settings; 3: it states the gates and figures; 4: one job per
    # gates shard, its rows in files named after it (data/<split>-NNNNN-PPP.parquet, not <split>-NNNNN-of-NNNNN).
    version = "4"
    inputs = ("gates", "images", "captions")  # captions: its rejects, for the card's departures from the paper
    schema = SCHEMA

    def plan(self, config: Config, upstream: Upstream) -> Plan:
        cfg = config.dataset
        settings = {"shard_bytes": cfg.shard_bytes, "row_group_bytes": cfg.row_group_bytes}
        earlier = _published_earlier(upstream)
        jobs = []
        for gates in upstream.shards("gates"):
            images = upstream.shard("images", gates.name)  # gates shard k comes from images shard k
            before = earlier.get(gates.name, [])
            inputs = {"gates": str(gates.path), "images": str(images.path), "published_before": before}
            key = job_key(self, settings, None, {"published_before": before} if before else None)
            jobs.append(ShardJob(gates.name, key, inputs, reads=(("gates", gates.name), ("images", images.name))))
        return Plan(jobs)

    def outputs_intact(self, config: Config, job: ShardJob, marker: dict) -> bool:
        """The marker vouches for the job's published files too: each must still be there, at its size."""
        files = (marker.get("stats") or {}).get("files")
        data = dataset_dir(config.out) / "data"
        return isinstance(files, dict) and all(
            (data / name).is_file() and (data / name).stat().st_size == size for name, size in files.items()
        )

    def process(self, job: ShardJob, model: None, config: Config) -> ShardOutput:
        cfg = config.dataset
        table = pq.read_table(job.inputs["gates"])
        pictures = _read_images(Path(job.inputs["images"]), set(table.column("image_id").to_pylist()))
        writer = PartsWriter(dataset_dir(config.out) / "data", job.name, cfg.shard_bytes, cfg.row_group_bytes)
        rows, rejects, seen = [], [], set(job.inputs.get("published_before", ()))
        for g in _sorted_rows(table):
            reason, detail = _problem(g, pictures, seen)
            if reason:
                rejects.append({"source": g["id"], "reason": reason, "detail": detail})
                continue
            seen.add(g["id"])
            writer.add(_published_row(g, pictures[g["image_id"]]))
            rows.append({k: g[k] for k in ("id", "split", "image_id", "emotion")})
        written = writer.close()
        index = [{**r, "file": written.files[k]} for r, k in zip(rows, writer.placements, strict=True)]
        stats = {
            "split": job.name.rsplit("-", 1)[0],
            "files": {name: (dataset_dir(config.out) / "data" / name).stat().st_size for name in written.files},
            "num_bytes": written.num_bytes,
            "images": sorted({r["image_id"] for r in rows}),
            "emotions": dict(sorted(Counter(r["emotion"] for r in rows).items())),
            "words_band": [config.captions.min_words, config.captions.max_words],
        }
        return ShardOutput(pa.Table.from_pylist(index, schema=SCHEMA), rejects, stats)

    def finish(self, config: Config, upstream: Upstream, markers: dict[str, dict]) -> None:
        """Drop files no job published any more, then write the card from every job's figures."""
        data = dataset_dir(config.out) / "data"
        kept = {name for m in markers.values() for name in m["stats"]["files"]}
        for path in data.glob("*.parquet*") if data.is_dir() else []:
            if path.name not in kept or path.name.endswith(TMP_SUFFIX):
                path.unlink()
        gates = upstream.shards("gates")
        captions = [s.rejects_path for s in upstream.shards("captions")]
        effects = measure(captions, [s.path for s in gates], [s.rejects_path for s in gates])
        gate_drops = dict(sorted(effects.clip_drops.items()))
        write_card(
            config, markers, gate_drops, prompt_text(config), dataset_dir(config.out), departures(config, effects)
        )


def _sorted_rows(table: pa.Table) -> Iterator[dict]:
    """A gates shard's rows in publishing order (split, image, caption, id), a batch of rows at a time as dicts:
    the shard's media stay in Arrow buffers instead of also living as Python bytes all at once."""
    keys = table.select([c for c in ("split", "image_id", "caption_index", "id") if c in table.column_names])
    keys = keys.to_pylist()
    order = sorted(range(len(keys)), key=lambda i: (str(keys[i].get("split")), str(keys[i].get("image_id")),
                                                    keys[i].get("caption_index") or 0, keys[i]["id"]))  # fmt: skip
    for k in range(0, len(order), SORT_BATCH_ROWS):
        yield from table.take(order[k : k + SORT_BATCH_ROWS]).to_pylist()


def _problem(g: dict, pictures: dict, seen: set) -> tuple[str | None, str]:
    if g["id"] in seen:
        return "dataset_duplicate_id", "id already published from an earlier gates row"
    if g.get("emotion") not in EMOTIONS:
        return "dataset_unknown_emotion", f"emotion {g.get('emotion')!r}"
    if g.get("image_id") not in pictures:
        return "dataset_missing_image", f"image {g.get('image_id')!r} not in the images stage"
    problem = _audio_problem((g.get("audio") or {}).get("bytes"))
    if problem:
        return "dataset_bad_audio", problem
    return None, ""


def _published_row(g: dict, picture: dict) -> dict:
    row = {c: g.get(c) for c in COLUMNS}
    row.update({c: picture.get(c) for c in ("image", *ATTRIBUTE_COLUMNS)})
    row["emotion"] = emotion_index(g["emotion"])
    row["audio"] = {"bytes": g["audio"]["bytes"], "path": (g["audio"].get("path") or f"{g['id']}.flac")}
    return row


def _read_images(shard: Path, ids: set[str]) -> dict[str, dict]:
    """The image rows (bytes and attributes) of `ids` in one images shard, reading only those rows."""
    found: dict[str, dict] = {}
    if not ids:
        return found
    table = pq.read_table(shard, columns=list(IMAGE_COLUMNS), filters=[("image_id", "in", sorted(ids))])
    for row in table.to_pylist():
        found.setdefault(row["image_id"], row)
    return found
