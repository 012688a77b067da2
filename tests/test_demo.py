"""`voxemoset demo` (the README's first command): the whole built chain on a fresh folder, ending with the report;
its dataset loads with `datasets` and its row counts equal the report's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from voxemoset.stages import BUILD_CHAIN
from voxemoset.store.runner import list_shards, stage_dir

# The shared demo build (tests/conftest.py `demo_build`) runs in the first test that asks for it: a few minutes.
pytestmark = pytest.mark.timeout(1200)
VOXEMOSET = str(Path(sys.executable).with_name("voxemoset"))


def test_demo_builds_the_chain_and_its_dataset_loads(demo_build, tmp_path):
    out, proc = demo_build
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"demo output: {out}" in proc.stdout
    assert "cremad: 20 usable clips" in proc.stdout
    for name in BUILD_CHAIN:
        shards = list_shards(stage_dir(out, name))
        assert shards and sum(pq.read_metadata(p).num_rows for p in shards) > 0, name

    # The demo ends with the report written (Table 1 with CLIPScore from its tiny CLIP) and says where it is.
    assert f"report: {out / 'report' / 'index.html'}" in proc.stdout.replace("\n", "")
    figures = json.loads((out / "report" / "report.json").read_text())
    assert figures["table1_method"]["clip_score"]["status"] == "ok"
    # `voxemoset report` with the demo's config finds the same tiny CLIP, into another folder's copy.
    import shutil

    copy = tmp_path / "copy"
    for part in ("dataset", "stages"):
        shutil.copytree(out / part, copy / part)
    shutil.copy(out / "manifest.json", copy / "manifest.json")
    report = subprocess.run([VOXEMOSET, "report", str(copy), "-c", str(out / "demo.yaml"), "--sample", "4"],
                            capture_output=True, text=True)  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    assert json.loads((copy / "report" / "report.json").read_text())["table1"] == figures["table1"]

    import datasets

    ds = datasets.load_dataset(str(out / "dataset"), cache_dir=str(tmp_path / "cache"))
    assert set(ds) == {"train", "test"}
    for split in ("train", "test"):
        assert len(ds[split]) == figures["table1"][split]["utterances"] > 0
    assert ds["train"].features["emotion"].names == ["enjoyment", "anger", "disgust", "fear", "sadness"]
    row = ds["train"][0]
    assert row["audio"].get_all_samples().sample_rate == 16000
    assert row["image"].mode == "RGB"
