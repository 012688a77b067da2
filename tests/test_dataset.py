"""`dataset` stage: Hub-ready shards that `datasets.load_dataset` reads back typed; byte budget; reruns."""

from __future__ import annotations

import io
import json
import random
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from PIL import Image

from voxemoset.config import parse_config
from voxemoset.emotions import EMOTIONS
from voxemoset.stages.dataset import DatasetStage
from voxemoset.stages.images import SCHEMA as IMAGES_SCHEMA
from voxemoset.store.atomic import write_parquet
from voxemoset.store.runner import rejects_table, run_stage

EMOSET_OF = {"enjoyment": "amusement", "anger": "anger", "disgust": "disgust", "fear": "fear", "sadness": "sadness"}
CORPORA = {"cremad": ["1001", "1002"], "ravdess": ["03", "04"], "mead": ["M003"]}


def _image_bytes(rng: random.Random) -> bytes:
    img = Image.new("RGB", (64, 48), tuple(rng.randrange(256) for _ in range(3)))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _flac(seconds: float, freq: float, sr: int = 16000) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def write_upstream(out: Path, per_emotion: dict[str, int] | None = None, seed: int = 0) -> dict:
    """Images- and gates-shaped shards (plus rejects) under `out/stages`, as the real stages leave them.

    Returns the expected counts: utterances and images per split, and the ids that must be rejected.
    """
    rng = random.Random(seed)
    per_emotion = per_emotion or {"train": 2, "test": 1}
    expected: dict = {"utterances": {}, "images": {}, "rejected": {}}
    for split, n in per_emotion.items():
        images, utts, rejects = [], [], []
        for emotion in EMOTIONS:
            for k in range(n):
                image_id = f"{EMOSET_OF[emotion]}_{split}{k:03d}"
                images.append({
                    "image_id": image_id, "split": split, "emoset_split": split, "emotion": emotion,
                    "emoset_emotion": EMOSET_OF[emotion], "image": {"bytes": _image_bytes(rng), "path": f"{image_id}.jpg"},
                    "width": 64, "height": 48, "source_format": "JPEG", "source_mode": "RGB", "source_sha256": "0" * 64,
                    "annotation_status": "ok", "brightness": rng.random(), "colorfulness": None if k else rng.random(),
                    "scene": "street", "object": ["car", "tree"][: k + 1], "facial_expression": None, "human_action": "walking",
                })  # fmt: skip
                for idx in range(3):
                    corpus = rng.choice(sorted(CORPORA))
                    words = rng.randrange(8, 16)
                    utts.append({
                        "id": f"u-{image_id}-{idx}", "image_id": image_id, "split": split, "emotion": emotion,
                        "emoset_emotion": EMOSET_OF[emotion], "caption_index": idx,
                        "caption": " ".join(["word"] * words), "n_words": words, "speed": 1.0,
                        "reference_id": f"{corpus}-ref{idx}", "reference_corpus": corpus,
                        "reference_speaker": rng.choice(CORPORA[corpus]), "reference_text": "it is eleven o'clock",
                        "tts_seed": rng.randrange(2**32), "nfe_steps": 32, "cfg_strength": 2.0,
                        "duration_s": 1.0 + 0.25 * idx, "sample_rate": 16000,
                        "audio": {"bytes": _flac(1.0 + 0.25 * idx, 220 + 40 * idx), "path": f"u-{image_id}-{idx}.flac"},
                        "attempts": rng.choice([1, 1, 2, 3]), "emo_pred": emotion if idx else rng.choice(EMOTIONS),
                        "emo_conf": round(rng.uniform(0.5, 1), 3), "emo_target_conf": round(rng.uniform(0.5, 1), 3),
                        "emo_scores": json.dumps({emotion: 0.9}), "dnsmos_ovrl": rng.uniform(2, 3.5),
                        "dnsmos_sig": rng.uniform(2.5, 4), "dnsmos_bak": rng.uniform(3, 4.2),
                        "dnsmos_p808": rng.uniform(2.8, 4), "asr_text": "word " * words, "wer": rng.choice([0.0, 0.1, None]),
                        "gate_log": "[]",
                    })  # fmt: skip
        # One utterance whose image the images stage dropped: the dataset stage must reject it.
        orphan = dict(utts[0], id=f"u-orphan-{split}", image_id=f"fear_{split}999")
        utts.append(orphan)
        rejects.append({"source": f"u-gone-{split}", "reason": "gates_emotion", "detail": "[]", "emo_pred": "anger",
                        "emo_conf": 0.4, "dnsmos_ovrl": 2.1, "wer": 0.5})  # fmt: skip
        write_parquet(
            out / "stages" / "images" / f"{split}-00000.parquet", pa.Table.from_pylist(images, schema=IMAGES_SCHEMA)
        )
        write_parquet(out / "stages" / "gates" / f"{split}-00000.parquet", pa.Table.from_pylist(utts))
        # The captions stage: the card counts its rejects (one image answered with a preamble, per split).
        captions = [{"caption_id": u["id"], "image_id": u["image_id"], "caption": u["caption"]} for u in utts]
        write_parquet(out / "stages" / "captions" / f"{split}-00000.parquet", pa.Table.from_pylist(captions))
        dropped = [{"source": f"gone_{split}", "reason": "captions_preamble", "detail": "The image shows a dog."}]
        write_parquet(out / "stages" / "captions" / "rejects" / f"{split}-00000.parquet",
                      rejects_table(dropped, "captions", pa.schema([("attempts", pa.int32())])))  # fmt: skip
        extra = pa.schema([("emo_pred", pa.string()), ("emo_conf", pa.float64()), ("dnsmos_ovrl", pa.float64()),
                           ("wer", pa.float64())])  # fmt: skip
        write_parquet(
            out / "stages" / "gates" / "rejects" / f"{split}-00000.parquet", rejects_table(rejects, "gates", extra)
        )
        expected["utterances"][split] = len(utts) - 1
        expected["images"][split] = len(images)
        expected["rejected"][orphan["id"]] = "dataset_missing_image"
    return expected


def make_config(out: Path, **dataset):
    # An absolute model path, as the demo writes them: the card must reduce it to a name.
    return parse_config(
        {"out": str(out), "dataset": dataset, "references": {"whisper": {"model": str(out / "models" / "w")}}}
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A dataset built with a tiny byte budget (several shards per split), and the report of it."""
    from voxemoset.report import write_report

    out = tmp_path_factory.mktemp("build")
    expected = write_upstream(out)
    config = make_config(out, shard_bytes=120_000, row_group_bytes=50_000)
    summary = run_stage(DatasetStage(), config, out)
    report = json.loads((write_report(out, sample=10) / "report.json").read_text())
    return out, config, expected, summary, report


def test_load_dataset_round_trip(built, tmp_path):
    import datasets

    out, _, expected, _, report = built
    ds = datasets.load_dataset(str(out / "dataset"), cache_dir=str(tmp_path / "cache"))
    assert set(ds) == {"train", "test"}
    for split, n in expected["utterances"].items():
        assert ds[split].num_rows == n == report["table1"][split]["utterances"]
        assert len(set(ds[split]["image_id"])) == expected["images"][split] == report["table1"][split]["images"]
        assert set(ds[split]["split"]) == {split}
    f = ds["train"].features
    assert isinstance(f["image"], datasets.Image) and isinstance(f["audio"], datasets.Audio)
    assert f["audio"].sampling_rate == 16000
    assert isinstance(f["emotion"], datasets.ClassLabel) and f["emotion"].names == list(EMOTIONS)
    assert f["object"] == datasets.List(datasets.Value("string")) and f["tts_seed"] == datasets.Value("int64")
    row = ds["test"][0]
    image = row["image"]
    assert image.size == (64, 48) and image.mode == "RGB"
    samples = row["audio"].get_all_samples()
    assert samples.sample_rate == 16000 and samples.data.shape[0] == 1
    assert abs(samples.data.shape[1] / 16000 - row["duration_s"]) < 0.01
    assert f["emotion"].int2str(row["emotion"]) in EMOTIONS
    assert sum(report["per_emotion"]["all"].values()) == ds["train"].num_rows + ds["test"].num_rows


def test_shards_are_named_budgeted_and_indexed(built):
    """Each gates shard's rows go to parts named after it (`<gates shard>-PPP.parquet`), byte-budgeted."""
    out, config, expected, summary, _ = built
    data = out / "dataset" / "data"
    names = sorted(p.name for p in data.iterdir())
    pattern = re.compile(r"^(train|test)-(\d{5})-(\d{3})\.parquet$")
    assert all(pattern.match(n) for n in names), names
    for split in ("train", "test"):
        parts = [int(pattern.match(n)[3]) for n in names if n.startswith(f"{split}-00000-")]
        assert len(parts) > 1, "a tiny budget must split each gates shard's rows into several files"
        assert parts == list(range(len(parts)))
    for name in names:
        pf = pq.ParquetFile(data / name)
        assert b"huggingface" in pf.schema_arrow.metadata
        # One row group may overshoot the budget only when it alone is larger than what is left.
        largest_group = max(pf.metadata.row_group(i).total_byte_size for i in range(pf.num_row_groups))
        assert (data / name).stat().st_size <= config.dataset.shard_bytes + largest_group
        for i in range(pf.num_row_groups):
            group = pf.metadata.row_group(i)
            assert group.total_byte_size <= config.dataset.row_group_bytes
            assert all(group.column(c).has_offset_index for c in range(group.num_columns))
    assert summary["rows"] == sum(expected["utterances"].values())
    stage = out / "stages" / "dataset"
    index = [r for p in sorted(stage.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    assert {r["file"] for r in index} == set(names) and len(index) == summary["rows"]
    for name in names:  # the index says where each row went
        ids = set(pq.read_table(data / name, columns=["id"]).column("id").to_pylist())
        assert ids == {r["id"] for r in index if r["file"] == name}
    rejects = [r for p in sorted((stage / "rejects").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    assert {r["source"]: r["reason"] for r in rejects} == expected["rejected"]


def test_card_header_and_provenance(built):
    import yaml

    out, *_ = built
    text = (out / "dataset" / "README.md").read_text()
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["configs"][0]["data_files"] == [{"split": "train", "path": "data/train-*"},
                                                  {"split": "test", "path": "data/test-*"}]  # fmt: skip
    assert [s["name"] for s in header["dataset_info"]["splits"]] == ["train", "test"]
    from voxemoset.code_version import code_version

    commit = code_version()["git_commit"] or "unknown"
    for needle in ("ODbL", "CC BY-NC-SA 4.0", "MEAD", "EmoSet", "Write three captions", "min_emotion_conf", commit,
                   "emotion2vec_plus_large", "llava-onevision", "voxemoset 0."):  # fmt: skip
        assert needle in text, needle
    assert str(out) not in text, "the card must not carry the builder's paths"


def test_rerun_is_a_noop_and_a_removed_dataset_is_rebuilt(built):
    out, config, *_ = built
    before = {p: p.stat().st_mtime_ns for p in (out / "dataset").rglob("*")}
    assert run_stage(DatasetStage(), config, out)["computed"] == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "dataset").rglob("*")} == before  # the card too: unchanged
    card = (out / "dataset" / "README.md").read_text()
    import shutil

    shutil.rmtree(out / "dataset")
    assert run_stage(DatasetStage(), config, out)["computed"] == 2  # both gates shards' files were gone
    assert (out / "dataset" / "README.md").read_text() == card


def test_a_crash_while_writing_the_card_loses_nothing(tmp_path, monkeypatch):
    """Files are written whole or not at all, the card last: a build that dies writing the card leaves every file
    whole and no temp file, and the rerun only writes the card."""
    import voxemoset.stages.dataset.card_files as card_module

    out = tmp_path / "build"
    write_upstream(out)
    run_stage(DatasetStage(), make_config(out), out)
    before = {p.relative_to(out): p.read_bytes() for p in (out / "dataset").rglob("*") if p.is_file()}

    def boom(*args, **kwargs):
        raise RuntimeError("killed while writing the card")

    monkeypatch.setattr(card_module, "card_text", boom)
    with pytest.raises(RuntimeError, match="killed"):
        run_stage(DatasetStage(), make_config(out, pretty_name="Changed"), out)
    after = {p.relative_to(out): p.read_bytes() for p in (out / "dataset").rglob("*") if p.is_file()}
    assert after == before
    monkeypatch.undo()
    assert run_stage(DatasetStage(), make_config(out, pretty_name="Changed"), out)["computed"] == 0
    assert "# Changed" in (out / "dataset" / "README.md").read_text()


def test_an_id_in_two_gates_shards_is_published_once(tmp_path):
    """Jobs run apart, one per gates shard: an id a later shard repeats is rejected there, with its reason."""
    out = tmp_path / "build"
    write_upstream(out, {"train": 1})
    gates = out / "stages" / "gates"
    table = pq.read_table(gates / "train-00000.parquet")
    write_parquet(gates / "train-00001.parquet", table.slice(0, 2))
    write_parquet(gates / "rejects" / "train-00001.parquet", pq.read_table(gates / "rejects" / "train-00000.parquet"))
    images = out / "stages" / "images"
    write_parquet(images / "train-00001.parquet", pq.read_table(images / "train-00000.parquet"))
    run_stage(DatasetStage(), make_config(out), out)
    published = [r["id"] for p in sorted((out / "dataset" / "data").glob("*.parquet")) for r in
                 pq.read_table(p, columns=["id"]).to_pylist()]  # fmt: skip
    assert len(published) == len(set(published)) == table.num_rows - 1  # less the orphan, which has no image
    rejected = pq.read_table(out / "stages" / "dataset" / "rejects" / "train-00001.parquet").to_pylist()
    assert {r["source"]: r["reason"] for r in rejected} == dict.fromkeys(table.column("id").to_pylist()[:2],
                                                                         "dataset_duplicate_id")  # fmt: skip
