"""`voxemoset demo` (the README's first command) runs on a fresh folder and says where its output is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from voxemoset.stages import BUILD_CHAIN
from voxemoset.store.runner import list_shards, stage_dir


def test_demo_runs_every_built_stage_and_prints_its_output(tmp_path):
    out = tmp_path / "demo"
    voxemoset = Path(sys.executable).with_name("voxemoset")
    proc = subprocess.run([str(voxemoset), "demo", "--out", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"demo output: {out}" in proc.stdout.replace("\n", "")
    for name in BUILD_CHAIN:
        shards = list_shards(stage_dir(out, name))
        assert shards and sum(pq.read_metadata(p).num_rows for p in shards) > 0
    assert "cremad: 20 usable clips" in proc.stdout
