"""`dataset` stage: gates utterances joined with their images, written as Hub-ready shards plus a card.

The output is split-wise and byte-budgeted, so the stage is one job ("all") keyed by the content of every
gates and images shard and the config. It builds `<out>/dataset.<pid>.tmp/` and swaps it in as
`<out>/dataset/` (data/ + README.md); the job's own table is an index of the published rows.
"""

from __future__ import annotations

import io
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from voxemoset.audio import OUT_RATE
from voxemoset.config import Config
from voxemoset.emotions import EMOTIONS
from voxemoset.errors import UserError
from voxemoset.published.features import ATTRIBUTE_COLUMNS, COLUMNS, emotion_index
from voxemoset.published.shards import SplitWriter
from voxemoset.resources import prompt_path
from voxemoset.stages.dataset.card import card_text, recorded_settings
from voxemoset.store.atomic import TMP_SUFFIX, write_atomic
from voxemoset.store.keys import hash_json
from voxemoset.store.runner import Plan, ShardJob, ShardOutput, StageBase, job_key, stage_dir, verified_shards

INDEX_SCHEMA = pa.schema([("id", pa.string()), ("split", pa.string()), ("image_id", pa.string()),
                          ("emotion", pa.string()), ("shard", pa.string())])  # fmt: skip
INDEX_COLUMNS = pa.schema(list(INDEX_SCHEMA)[:-1])  # all but `shard`, known once a split is written
IMAGE_COLUMNS = ("image_id", "image", *ATTRIBUTE_COLUMNS)
SORT_BATCH_ROWS = 256  # gates rows turned into Python objects at once


def dataset_dir(out: Path) -> Path:
    """Where the published dataset folder lives: `<out>/dataset`."""
    return Path(out) / "dataset"


def _prompt_text(config: Config) -> str | None:
    try:
        path = prompt_path(config.captions)
    except UserError:
        return None
    return path.read_text() if path.is_file() else None


def _shards(out: Path, stage: str) -> list[tuple[Path, str]]:
    shards = verified_shards(out, stage, "dataset")
    if not shards:
        raise UserError(f"stage dataset reads the {stage} stage, which has no shards under "
                        f"{stage_dir(out, stage)}: run it first")  # fmt: skip
    return shards


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
    """Gates + images shards -> `<out>/dataset/` (data/<split>-NNNNN-of-NNNNN.parquet, README.md)."""

    name = "dataset"
    version = "3"  # 2: the card records the config less speed-only settings; 3: it states the gates and figures

    def plan(self, config: Config) -> Plan:
        out = Path(config.out)
        gates, images = _shards(out, "gates"), _shards(out, "images")
        inputs = {
            "gates": [[p.name, sha] for p, sha in gates],
            "images": [[p.name, sha] for p, sha in images],
            "prompt": hash_json(_prompt_text(config)),
        }
        # The card records these settings, so exactly these key the output.
        stage_config = recorded_settings(config)
        key = job_key(self, stage_config, None, inputs)
        work = {"gates": [str(p) for p, _ in gates], "images": [str(p) for p, _ in images]}
        return Plan([ShardJob("all", key, work)])

    def outputs_intact(self, config: Config, job: ShardJob) -> bool:
        """The marker vouches for `<out>/dataset` too: if that folder was removed, the job is not done any more."""
        return (dataset_dir(config.out) / "README.md").is_file()

    def process(self, job: ShardJob, model: None, config: Config) -> ShardOutput:
        out = Path(config.out)
        for old in out.glob(f"dataset.*{TMP_SUFFIX}"):
            shutil.rmtree(old, ignore_errors=True)  # left by a killed build
        build = out / f"dataset.{os.getpid()}{TMP_SUFFIX}"
        try:
            writers, placed, rejects, counts = self._write_shards(job, build / "data", config)
            splits = {name: w.close() for name, w in sorted(writers.items(), key=lambda kv: _split_order(kv[0]))}
            index = _index_table(placed, writers, splits)
            text = card_text(config, splits, counts, _prompt_text(config), build / "data")
            write_atomic(build / "README.md", lambda tmp: tmp.write_text(text))
            _swap_in(build, dataset_dir(out))
        finally:
            shutil.rmtree(build, ignore_errors=True)
        stats = {
            "splits": {
                n: {"rows": s.rows, "shards": len(s.files), "file_bytes": s.file_bytes, "num_bytes": s.num_bytes}
                for n, s in splits.items()
            },
            "words_band": [config.captions.min_words, config.captions.max_words],
        }
        return ShardOutput(index, rejects, stats)

    def _write_shards(self, job: ShardJob, data: Path, config: Config):
        cfg = config.dataset
        where = _image_index([Path(p) for p in job.inputs["images"]])
        writers: dict[str, SplitWriter] = {}
        # The index's columns of the published rows, per split, as Arrow chunks: a few bytes a row, not a dict.
        placed: dict[str, list[pa.Table]] = {}
        rejects, seen = [], set()
        counts: dict = {"images": {}, "emotions": {}}
        images_seen: dict[str, set] = {}
        for path in job.inputs["gates"]:
            table = pq.read_table(path)
            pictures = _read_images(where, set(table.column("image_id").to_pylist()))
            kept: dict[str, list[dict]] = {}
            for g in _sorted_rows(table):
                reason, detail = _problem(g, pictures, seen)
                if reason:
                    rejects.append({"source": g["id"], "reason": reason, "detail": detail})
                    continue
                seen.add(g["id"])
                split = g["split"]
                if split not in writers:
                    writers[split] = SplitWriter(data, split, cfg.shard_bytes, cfg.row_group_bytes)
                writers[split].add(_published_row(g, pictures[g["image_id"]]))
                kept.setdefault(split, []).append({k: g[k] for k in INDEX_SCHEMA.names[:-1]})
                images_seen.setdefault(split, set()).add(g["image_id"])
                per = counts["emotions"].setdefault(split, Counter())
                per[g["emotion"]] += 1
            for split, rows in kept.items():
                placed.setdefault(split, []).append(pa.Table.from_pylist(rows, schema=INDEX_COLUMNS))
        counts["images"] = {s: len(ids) for s, ids in images_seen.items()}
        return writers, placed, rejects, counts


def _sorted_rows(table: pa.Table) -> Iterator[dict]:
    """A gates shard's rows in publishing order (split, image, caption, id), a batch of rows at a time as dicts:
    the shard's media stay in Arrow buffers instead of also living as Python bytes all at once."""
    keys = table.select([c for c in ("split", "image_id", "caption_index", "id") if c in table.column_names])
    keys = keys.to_pylist()
    order = sorted(range(len(keys)), key=lambda i: (str(keys[i].get("split")), str(keys[i].get("image_id")),
                                                    keys[i].get("caption_index") or 0, keys[i]["id"]))  # fmt: skip
    for k in range(0, len(order), SORT_BATCH_ROWS):
        yield from table.take(order[k : k + SORT_BATCH_ROWS]).to_pylist()


def _index_table(placed: dict[str, list[pa.Table]], writers: dict[str, SplitWriter], splits: dict) -> pa.Table:
    """The job's table: every published row's id, split, image, emotion and the data file it went to."""
    parts = []
    for name, chunks in placed.items():
        files = pa.array(splits[name].files, pa.string())
        shard = files.take(pa.array(writers[name].placements, pa.int32()))
        parts.append(pa.concat_tables(chunks).append_column("shard", shard))
    return pa.concat_tables(parts).combine_chunks() if parts else INDEX_SCHEMA.empty_table()


def _split_order(name: str) -> tuple:
    """train, then test, then anything else alphabetically (the card lists splits in this order)."""
    return ({"train": 0, "test": 1}.get(name, 2), name)


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


def _image_index(shards: list[Path]) -> dict[str, Path]:
    """image_id -> the images shard holding it (reads only the id column)."""
    where: dict[str, Path] = {}
    for path in shards:
        for image_id in pq.read_table(path, columns=["image_id"]).column("image_id").to_pylist():
            where.setdefault(image_id, path)
    return where


def _read_images(where: dict[str, Path], ids: set[str]) -> dict[str, dict]:
    """The image rows (bytes and attributes) of `ids`, reading from each images shard only what is needed."""
    by_shard: dict[Path, list[str]] = {}
    for image_id in ids:
        if image_id in where:
            by_shard.setdefault(where[image_id], []).append(image_id)
    found = {}
    for path, wanted in by_shard.items():
        table = pq.read_table(path, columns=list(IMAGE_COLUMNS), filters=[("image_id", "in", wanted)])
        for row in table.to_pylist():
            found.setdefault(row["image_id"], row)
    return found


def _swap_in(build: Path, final: Path) -> None:
    """Replace `final` by `build` with two atomic renames.

    A crash between them leaves no `final`; the runner then finds the job undone and rebuilds.
    """
    old = final.with_name(f"{final.name}.old.{os.getpid()}{TMP_SUFFIX}")
    if final.exists():
        os.replace(final, old)
    os.replace(build, final)
    shutil.rmtree(old, ignore_errors=True)
