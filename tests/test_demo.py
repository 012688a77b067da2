"""`voxemoset demo` (the README's first command): the whole built chain on a fresh folder, then its dataset
loads with `datasets` and its row counts equal the report's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from voxemoset.stages import BUILD_CHAIN
from voxemoset.store.runner import list_shards, stage_dir

VOXEMOSET = str(Path(sys.executable).with_name("voxemoset"))


def test_demo_builds_the_chain_and_its_dataset_loads(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([VOXEMOSET, "demo", "--out", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"demo output: {out}" in proc.stdout
    assert "cremad: 20 usable clips" in proc.stdout
    for name in BUILD_CHAIN:
        shards = list_shards(stage_dir(out, name))
        assert shards and sum(pq.read_metadata(p).num_rows for p in shards) > 0, name

    report = subprocess.run([VOXEMOSET, "report", str(out)], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr[-3000:]
    figures = json.loads((out / "report" / "report.json").read_text())

    import datasets

    ds = datasets.load_dataset(str(out / "dataset"))
    assert set(ds) == {"train", "test"}
    for split in ("train", "test"):
        assert len(ds[split]) == figures["table1"][split]["utterances"] > 0
    assert ds["train"].features["emotion"].names == ["enjoyment", "anger", "disgust", "fear", "sadness"]
    row = ds["train"][0]
    assert row["audio"].get_all_samples().sample_rate == 16000
    assert row["image"].mode == "RGB"
