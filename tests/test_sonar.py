"""SONAR for real: a tiny random SONAR speech encoder (SONAR's own factory, small sizes) in SONAR's environment
writes frame embeddings with scripts/encode_sonar.py, and `voxemoset train` fits the SIB on them in this one.

SONAR cannot share this environment (fairseq2 0.8.1 pins torch 2.9.1): `scripts/setup_sonar_env.sh` builds
`.venv-sonar` and scripts/test.sh points VOXEMOSET_SONAR_PYTHON at it, so CI runs these tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SONAR_PYTHON = os.environ.get("VOXEMOSET_SONAR_PYTHON")

pytestmark = pytest.mark.skipif(
    not SONAR_PYTHON,
    reason="needs the SONAR environment: bash scripts/setup_sonar_env.sh, "
    "then VOXEMOSET_SONAR_PYTHON=.venv-sonar/bin/python (scripts/test.sh does both)",
)


def _run(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def sonar(tmp_path_factory) -> dict[str, Path]:
    """A tiny SONAR checkpoint, a published-layout dataset and a tiny SD-1.5-layout folder."""
    from voxemoset.train.tiny import write_tiny_dataset, write_tiny_sd

    root = tmp_path_factory.mktemp("sonar")
    _run([SONAR_PYTHON, "scripts/tiny_sonar.py", str(root / "sonar")])
    return {
        "root": root,
        "model": root / "sonar" / "spenc.tiny.pt",
        "arch": root / "sonar" / "spenc.tiny.arch.json",
        "dataset": write_tiny_dataset(root / "out" / "dataset", n_train=4, n_test=2),
        "sd": write_tiny_sd(root / "sd", cross_attention_dim=32),
    }


def _encode(sonar: dict, split: str, out: Path) -> Path:
    _run([SONAR_PYTHON, "scripts/encode_sonar.py", "--dataset", str(sonar["dataset"]), "--split", split,
          "--model", str(sonar["model"]), "--arch-overrides", str(sonar["arch"]), "--out", str(out),
          "--device", "cpu"])  # fmt: skip
    return out


def test_tiny_sonar_frames_are_per_utterance_and_depend_on_the_audio(sonar):
    import pyarrow.parquet as pq
    from safetensors import safe_open

    store = _encode(sonar, "train", sonar["root"] / "emb")
    ids = [i for p in sorted((sonar["dataset"] / "data").glob("train-*.parquet"))
           for i in pq.read_table(p, columns=["id"]).column("id").to_pylist()]  # fmt: skip
    frames = {}
    for shard in sorted(store.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as fh:
            assert fh.metadata()["encoder"] == "sonar"
            frames.update({k: fh.get_tensor(k).float() for k in fh.keys()})
    assert sorted(frames) == sorted(ids)
    meta = json.loads((store / "meta.json").read_text())
    assert meta["encoder"] == "sonar" and meta["dim"] == 32
    shapes = {tuple(t.shape) for t in frames.values()}
    assert all(len(s) == 2 and s[1] == 32 and s[0] > 1 for s in shapes)
    a, b = (frames[k] for k in ids[:2])
    n = min(len(a), len(b))
    assert not a[:n].allclose(b[:n])  # different clips give different frames: the encoder really runs
    # A rerun finds every shard written and redoes nothing.
    before = {p.name: p.stat().st_mtime_ns for p in store.glob("*.safetensors")}
    _encode(sonar, "train", store)
    assert {p.name: p.stat().st_mtime_ns for p in store.glob("*.safetensors")} == before


def test_voxemoset_train_fits_the_sib_on_sonar_frames(sonar, tmp_path):
    store = _encode(sonar, "train", sonar["root"] / "emb")
    config = {
        "dataset": str(sonar["dataset"]),
        "output_dir": str(tmp_path / "run"),
        "cache_dir": str(tmp_path / "cache"),
        "pretrained": str(sonar["sd"]),
        "encoder": {"kind": "sonar", "model": str(sonar["model"]), "precomputed": True, "embeddings": str(store)},
        "sib": {"heads": 2, "width": 16},
        "batch_size": 2,
        "max_steps": 2,
        "resolution": 32,
        "num_workers": 0,
        "checkpoint_every": 2,
        "log_every": 1,
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "voxemoset.cli", "train", "-c", str(path)],
                          capture_output=True, text=True, env=env, timeout=600, cwd=REPO)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    checkpoint = tmp_path / "run" / "checkpoint-2"
    assert checkpoint.is_dir(), proc.stdout + proc.stderr[-2000:]
    assert "step 2" in proc.stdout
