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

from voxemoset.train.encode import SONAR_SETUP

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


def _voxemoset(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "voxemoset.cli", *args], capture_output=True, text=True, env=env,
                          timeout=1200, cwd=REPO)  # fmt: skip
    assert (proc.returncode == 0) == ok, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _run_named_commands(error: str, sonar: dict) -> int:
    """Run each SONAR command an `error:` line names, as a user pastes it (the tiny encoder adds its shrunken
    architecture and the CPU); the number run."""
    commands = error.split(f"write them with: {SONAR_SETUP} && ", 1)[1].split(" && ")
    for command in commands:
        args = command.split()
        assert args[:2] == [".venv-sonar/bin/python", "scripts/encode_sonar.py"], command
        _run([SONAR_PYTHON, *args[1:], "--arch-overrides", str(sonar["arch"]), "--device", "cpu"])
    return len(commands)


def _localise(value, swap: dict[str, str]):
    """The example config's `runs/...` and `weights/...` paths, pointed at this test's folders."""
    if isinstance(value, dict):
        return {k: _localise(v, swap) for k, v in value.items()}
    if isinstance(value, list):
        return [_localise(v, swap) for v in value]
    if isinstance(value, str):
        for old, new in swap.items():
            if value == old or value.startswith(old + "/"):
                return new + value[len(old) :]
    return value


def test_the_example_recipe_trains_then_evaluates_with_sonar(sonar, tiny_models, tmp_path):
    """configs/train_example.yaml -> configs/eval_example.yaml as the README runs them, at tiny size: `encode` names
    the SONAR commands, `train` fits the SONAR mixture and the text baseline, `evaluate` first names the test sets'
    missing frames, then fills Tab. 2 (FID through a random Inception-v3, CLIPScore, Emo-A) for every system."""
    from voxemoset.train.tiny import (
        write_random_inception,
        write_tiny_dataset,
        write_tiny_emotion_classifier,
        write_tiny_sd,
    )

    runs = tmp_path / "runs"
    write_tiny_dataset(runs / "voxemoset" / "dataset", n_train=4, n_test=3, captions_per_image=1)
    for name in ("spokencoco", "flickr8k"):
        write_tiny_dataset(runs / "voxemoset" / "corpora" / name, 4, 3, captions_per_image=1, emotions=False)
    weights = {
        "runs": str(runs),
        "weights/sd-1.5": str(write_tiny_sd(tmp_path / "sd", cross_attention_dim=32)),
        "weights/sonar/spenc.eng.pt": str(sonar["model"]),
        "weights/whisper-large-v3": str(tiny_models["whisper"]),
        "weights/clip-vit-large-patch14": str(tiny_models["clip"]),
        "weights/weights-inception-2015-12-05-6726825d.pth": str(write_random_inception(tmp_path / "inception.pth")),
        "weights/emoset-classifier": str(write_tiny_emotion_classifier(tmp_path / "emo")),
    }
    tiny = {"batch_size": 2, "max_steps": 2, "checkpoint_every": 2, "log_every": 1, "resolution": 32,
            "num_workers": 0, "mixed_precision": "no", "sib": {"heads": 2}}  # fmt: skip
    train = _localise(yaml.safe_load((REPO / "configs" / "train_example.yaml").read_text()), weights)
    train = train | tiny | {"sib": train["sib"] | tiny["sib"]}
    train_path, text_path = tmp_path / "train.yaml", tmp_path / "text.yaml"
    train_path.write_text(yaml.safe_dump(train))
    text = train | {"conditioning": "text", "mode": "lora", "lr": 1e-3, "output_dir": str(runs / "train" / "text")}
    text_path.write_text(yaml.safe_dump(text))

    # 1. `encode` names both training datasets' SONAR commands in one error line; they run; a second `encode` is
    #    content.
    error = _voxemoset("encode", "-c", str(train_path), ok=False).stderr.strip().splitlines()[-1]
    assert error.startswith("error: SONAR embeddings are missing for 2 datasets")
    assert _run_named_commands(error, sonar) == 2
    _voxemoset("encode", "-c", str(train_path))
    # 2. The SONAR mixture and the text baseline train.
    assert "step 2" in _voxemoset("train", "-c", str(train_path)).stdout
    _voxemoset("train", "-c", str(text_path))

    evaluate = _localise(yaml.safe_load((REPO / "configs" / "eval_example.yaml").read_text()), weights)
    for system in evaluate["systems"]:
        if "checkpoint" in system:
            system["checkpoint"] = system["checkpoint"].replace("checkpoint-100000", "checkpoint-2")
    evaluate |= {"steps": 2, "resolution": 32, "batch_size": 2, "device": "cpu"}
    eval_path = tmp_path / "eval.yaml"
    eval_path.write_text(yaml.safe_dump(evaluate))
    # 3. `evaluate` stops before generating anything, naming each test set's missing frames; they are written.
    error = _voxemoset("evaluate", "-c", str(eval_path), ok=False).stderr.strip().splitlines()[-1]
    assert error.startswith("error: system Ours (SONAR + SIB) reads SONAR frames: SpokenCOCO: 1 of 1 shards lack")
    assert not (runs / "eval" / "images").exists()
    assert _run_named_commands(error, sonar) == 3
    # 4. Tab. 2: every system, every test set, every metric.
    printed = _voxemoset("evaluate", "-c", str(eval_path)).stdout
    table = json.loads((runs / "eval" / "table.json").read_text())
    assert [r["name"] for r in table["rows"]][0] == "Ours (SONAR + SIB)" and len(table["rows"]) == 4
    assert table["columns"] == [f"{s}/{m}" for s in ("SpokenCOCO", "Flickr8kAudio", "VoxEmoset")
                                for m in ("fid", "clip_score")] + ["VoxEmoset/emo_a"]  # fmt: skip
    for row in table["rows"]:
        assert all(v is not None for v in row["values"].values()), row
    assert "| Ours (SONAR + SIB) |" in printed
