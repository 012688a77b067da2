"""The `images` stage over a miniature EmoSet tree: mapping, splits, rejects, skipping, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.builders import make_config, stage_table
from voxemoset.fixtures.emoset import SPECIALS
from voxemoset.stages.images import ImagesStage
from voxemoset.store.runner import list_shards, run_stage, stage_dir


def _config(out: Path, emoset: Path, **images):
    return make_config(out, emoset, images=images)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(emoset_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    cfg = _config(out, emoset_root, shard_size=10)
    summary = run_stage(ImagesStage(), cfg, out)
    return out, cfg, summary


def test_counts_per_emotion_and_split(built):
    out, _, summary = built
    rows = stage_table(stage_dir(out, "images")).to_pylist()
    counts = Counter((r["split"], r["emotion"]) for r in rows)
    # 3 train + 1 val per EmoSet label in train; amusement+excitement merge; specials add to train.
    assert counts == {
        ("train", "enjoyment"): 8,
        ("train", "anger"): 5,  # + anger_90007 (a PNG named .jpg)
        ("train", "disgust"): 5,  # + disgust_90008 (CMYK JPEG)
        ("train", "fear"): 4,  # all six fear specials are broken
        ("train", "sadness"): 5,  # + sadness_90009 (palette PNG with transparency)
        ("test", "enjoyment"): 4,
        ("test", "anger"): 2,
        ("test", "disgust"): 2,
        ("test", "fear"): 2,
        ("test", "sadness"): 2,
    }
    assert summary["rows"] == len(rows) == 39
    assert summary["filtered"] == {"emoset_awe": 6, "emoset_contentment": 6}


def test_mapping_and_val_folding(built):
    out, _, _ = built
    rows = stage_table(stage_dir(out, "images")).to_pylist()
    assert {r["emoset_emotion"] for r in rows} == {"amusement", "excitement", "anger", "disgust", "fear", "sadness"}
    assert all(r["emotion"] == "enjoyment" for r in rows if r["emoset_emotion"] in ("amusement", "excitement"))
    val = [r for r in rows if r["emoset_split"] == "val"]
    assert len(val) == 6 and all(r["split"] == "train" for r in val)
    assert {r["split"] for r in rows if r["emoset_split"] == "test"} == {"test"}


def test_images_decoded_once_and_normalised(built):
    from io import BytesIO

    from PIL import Image

    out, _, _ = built
    rows = {r["image_id"]: r for r in stage_table(stage_dir(out, "images")).to_pylist()}
    for r in rows.values():
        img = Image.open(BytesIO(r["image"]["bytes"]))
        assert img.mode == "RGB" and img.size == (r["width"], r["height"])
    assert rows["anger_90007"]["source_format"] == "PNG"  # sniffed, not taken from the .jpg name
    assert rows["disgust_90008"]["source_mode"] == "CMYK"
    assert rows["sadness_90009"]["source_mode"] == "P"
    statuses = Counter(r["annotation_status"] for r in rows.values())
    assert statuses == {"ok": 37, "missing": 1, "invalid": 1}
    ok = next(r for r in rows.values() if r["annotation_status"] == "ok")
    assert isinstance(ok["brightness"], float) and ok["object"] and ok["scene"]
    missing = next(r for r in rows.values() if r["annotation_status"] == "missing")
    assert missing["brightness"] is None and missing["object"] is None


def test_every_broken_file_is_rejected_with_its_reason(built):
    out, _, summary = built
    rejects = stage_table(stage_dir(out, "images") / "rejects").to_pylist()
    by_source = {Path(r["source"]).stem: r["reason"] for r in rejects}
    for image_id, _kind, reason in SPECIALS:
        if reason:
            assert by_source[image_id] == reason
    reasons = Counter(r["reason"] for r in rejects)
    assert reasons["images_bad_split_row"] == 1 and reasons["images_unknown_emotion"] == 1
    assert summary["rejects"] == dict(sorted(reasons.items()))
    assert all(r["stage"] == "images" and r["source"] for r in rejects)


def test_second_run_rewrites_nothing(built):
    out, cfg, _ = built
    folder = stage_dir(out, "images")
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    summary = run_stage(ImagesStage(), cfg, out)
    after = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    assert summary["computed"] == 0 and summary["skipped"] == summary["shards"]
    assert before == after


def test_changed_config_is_noticed(emoset_root, tmp_path):
    run_stage(ImagesStage(), _config(tmp_path, emoset_root, shard_size=10), tmp_path)
    summary = run_stage(ImagesStage(), _config(tmp_path, emoset_root, shard_size=10, min_side=50), tmp_path)
    assert summary["computed"] == summary["shards"]
    assert summary["rejects"]["images_too_small"] > 1


def test_sigkill_mid_stage_then_rerun_is_byte_identical(emoset_root, tmp_path):
    from tests.conftest import write_config

    reference = tmp_path / "reference"
    run_stage(ImagesStage(), _config(reference, emoset_root, shard_size=1), reference)
    expected = _snapshot(stage_dir(reference, "images"))
    n_shards = sum(1 for k in expected if k.startswith("_done/"))

    killed_at = None
    for attempt in range(5):
        out = tmp_path / f"killed{attempt}"
        cfg = write_config(
            tmp_path / f"kill{attempt}.yaml",
            {"out": str(out), "sources": {"emoset": str(emoset_root)}, "images": {"shard_size": 1}},
        )
        cmd = [sys.executable, "-m", "voxemoset.cli", "stage", "images", "--direct", "-c", str(cfg)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        done = stage_dir(out, "images") / "_done"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            finished = len(list(done.glob("*.json"))) if done.is_dir() else 0
            if finished >= 1 + attempt * 3:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.wait()
        if proc.returncode == -signal.SIGKILL:
            killed_at = len(list(done.glob("*.json")))
            if killed_at < n_shards:
                break
    assert killed_at is not None and killed_at < n_shards, "could not kill the stage mid-run"
    # What a killed run leaves is readable: every listed shard is whole.
    for p in list_shards(stage_dir(out, "images")):
        pq.read_table(p)
    subprocess.run(cmd, check=True, capture_output=True)
    got = _snapshot(stage_dir(out, "images"))
    assert got.keys() == expected.keys()
    assert got == expected


def test_not_an_emoset_tree_is_one_clear_line(tmp_path):
    from tests.conftest import write_config

    (tmp_path / "photos").mkdir()
    cfg = write_config(
        tmp_path / "c.yaml", {"out": str(tmp_path / "o"), "sources": {"emoset": str(tmp_path / "photos")}}
    )
    proc = subprocess.run(
        [sys.executable, "-m", "voxemoset.cli", "stage", "images", "--direct", "-c", str(cfg)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not an EmoSet-118K tree" in lines[0] and "Traceback" not in proc.stderr
