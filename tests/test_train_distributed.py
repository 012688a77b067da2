"""Training in 2 processes on the CPU (gloo), launched as the README says:

    ACCELERATE_USE_CPU=1 torchrun --standalone --nproc_per_node 2 -m voxemoset.cli train -c CONFIG

The ranks train on disjoint rows in every micro-batch (one dataset and a mixture), one checkpoint folder holds both
ranks' RNG states, and a 2-process run stopped and resumed continues the loss curve of a straight run bit for bit
(2 ranks' gradients are summed in one order by gloo, so nothing is left to chance).

Four real `torchrun` runs of tiny models, built once by the module's fixture (~20 s each on 2 idle cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import write_config

WORLD = 2
STEPS = 4  # 2 epochs of the 8-row dataset at batch 2 x 2 ranks
LORA = "pytorch_lora_weights.safetensors"


def _launch(config: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    """`voxemoset train` in WORLD processes, as a user would start it (the venv's torchrun next to this python)."""
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args = [torchrun, "--standalone", "--nproc_per_node", str(WORLD), "-m", "voxemoset.cli", "train", "-c"]
    proc = subprocess.run([*args, str(config), *extra], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_models) -> dict[str, Path | subprocess.CompletedProcess]:
    """A straight 4-step run, the same run stopped at its step-2 checkpoint and resumed, and a 2-dataset mixture."""
    from voxemoset.train.tiny import write_tiny_dataset, write_tiny_sd

    root = tmp_path_factory.mktemp("distributed")
    base = {
        "dataset": str(write_tiny_dataset(root / "out" / "dataset", n_train=8, n_test=1)),
        "cache_dir": str(root / "cache"),  # shared: the runs after the first read its latents
        "pretrained": str(write_tiny_sd(root / "sd", cross_attention_dim=32)),
        "encoder": {"model": str(tiny_models["whisper"])},
        "sib": {"heads": 2, "width": 16},
        "mode": "lora",
        "lr": 1e-2,
        "batch_size": 2,
        "max_steps": STEPS,
        "resolution": 32,
        "num_workers": 0,
        "checkpoint_every": 2,
        "keep_last": None,
        "cond_dropout": 0.3,
        "log_every": 1,
        "trace_rows": True,
    }
    found: dict = {"straight": root / "straight", "resumed": root / "resumed", "mixture": root / "mixture"}
    found |= {"dataset": Path(base["dataset"]), "whisper": base["encoder"]["model"]}

    def config(name: str, **kw) -> Path:
        return write_config(root / f"{name}.yaml", base | {"output_dir": str(found[name])} | kw)

    found["straight_proc"] = _launch(config("straight"), root)
    _launch(config("resumed", max_steps=STEPS // 2), root)
    _launch(config("resumed"), root, "--resume", "latest")
    # SpokenCOCO-like 6 rows and VoxEmoset-like 4: the old draw with replacement gave both ranks one row by step 3.
    coco = write_tiny_dataset(root / "corpora" / "spokencoco", n_train=6, n_test=1, emotions=False)
    vox = write_tiny_dataset(root / "vox" / "dataset", n_train=4, n_test=1)
    mixture = [{"path": str(coco), "weight": 0.5}, {"path": str(vox), "weight": 0.5, "name": "voxemoset"}]
    _launch(config("mixture", dataset=None, datasets=mixture, checkpoint_every=STEPS), root)
    return found


def _traces(out: Path) -> list[list[dict]]:
    """Each rank's rows-<rank>.jsonl: one entry per micro-batch."""
    return [[json.loads(line) for line in (out / f"rows-{r}.jsonl").read_text().splitlines()] for r in range(WORLD)]


def _losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "log.jsonl").read_text().splitlines()]


def _assert_disjoint_micro_batches(out: Path) -> list[list[str]]:
    """Every micro-batch: both ranks at the same position, batch_size distinct rows each, no row on two ranks.
    Returns each micro-batch's global rows."""
    ranks = _traces(out)
    assert [len(t) for t in ranks] == [STEPS] * WORLD
    global_batches = []
    for entries in zip(*ranks, strict=True):
        assert len({(e["step"], e["micro"]) for e in entries}) == 1, entries
        rows = [row for e in entries for row in e["ids"]]
        assert len(rows) == 2 * WORLD and len(set(rows)) == len(rows), entries
        global_batches.append(rows)
    assert [e["step"] for e in ranks[0]] == list(range(1, STEPS + 1))
    return global_batches


def test_ranks_train_on_disjoint_rows_of_one_dataset(runs):
    batches = _assert_disjoint_micro_batches(runs["straight"])
    ids = {f"train-{i:04d}" for i in range(8)}
    # An epoch is one permutation of the 8 rows cut into 2 global batches: every row once per epoch.
    for epoch in range(STEPS // 2):
        seen = batches[2 * epoch] + batches[2 * epoch + 1]
        assert sorted(seen) == sorted(ids)


def test_ranks_train_on_disjoint_rows_of_a_mixture(runs):
    batches = _assert_disjoint_micro_batches(runs["mixture"])
    rows = {row for batch in batches for row in batch}
    assert {row.split("/")[0] for row in rows} == {"spokencoco", "voxemoset"}  # `<dataset>/<id>`
    assert all(row.startswith(("spokencoco/corpus-train-", "voxemoset/train-")) for row in rows)
    assert (runs["mixture"] / f"checkpoint-{STEPS}" / "rng-1.pt").is_file()


def test_one_checkpoint_folder_holds_every_rank_rng(runs):
    out = runs["straight"]
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name) == ["checkpoint-2", "checkpoint-4"]
    ckpt = out / f"checkpoint-{STEPS}"
    assert {p.name for p in ckpt.iterdir()} == {
        "sib",
        LORA,
        "train_config.json",
        "training_state.pt",
        *(f"rng-{r}.pt" for r in range(WORLD)),
    }
    state = torch.load(ckpt / "training_state.pt", weights_only=True)
    assert state["step"] == STEPS
    rngs = [torch.load(ckpt / f"rng-{r}.pt", weights_only=True) for r in range(WORLD)]
    assert not torch.equal(rngs[0]["generator"], rngs[1]["generator"])  # one noise stream per rank
    # One writer: one log line per step and one closing line, not one per process.
    assert len(_losses(out)) == STEPS
    assert runs["straight_proc"].stdout.count("last checkpoint") == 1


def test_rank_zero_encodes_speech_as_one_process_would(runs, tmp_path, one_torch_thread):
    """The first run's rank 0 wrote the Whisper frames: in fp32 as on any CPU (its device is named "cpu:0"), so
    they equal a single process's bit for bit (both single-threaded)."""
    from voxemoset.train.config import EncoderConfig
    from voxemoset.train.encode import embeddings_dir, encode_split
    from voxemoset.train.encoders import TensorStore

    encoder = EncoderConfig(model=runs["whisper"])
    ranked = TensorStore(embeddings_dir(runs["dataset"], encoder))
    folder = encode_split(runs["dataset"], "train", encoder.model_copy(update={"embeddings": tmp_path}), "cpu")
    alone = TensorStore(folder)
    for i in range(8):
        assert torch.equal(ranked.get(f"train-{i:04d}"), alone.get(f"train-{i:04d}"))


def test_resumed_two_process_run_continues_the_loss_curve_bit_for_bit(runs):
    straight, resumed = _losses(runs["straight"]), _losses(runs["resumed"])
    assert len(straight) == STEPS
    assert resumed == straight  # exact: gloo sums 2 ranks' gradients in one order
    assert _traces(runs["resumed"]) == _traces(runs["straight"])  # the same rows, micro-batch by micro-batch
    assert sorted(p.name for p in runs["resumed"].glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]


def test_a_launch_whose_processes_do_not_join_is_refused(monkeypatch):
    """torchrun's processes on a machine without a GPU and no ACCELERATE_USE_CPU: accelerate runs each alone, and
    N copies of one run would write one folder. The trainer stops with one line saying what to set."""
    from voxemoset.errors import UserError
    from voxemoset.train.config import TrainConfig
    from voxemoset.train.loop import _accelerator

    if torch.cuda.is_available():
        pytest.skip("with a GPU, accelerate joins torchrun's processes with nccl")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    with pytest.raises(UserError, match="ACCELERATE_USE_CPU=1"):
        _accelerator(TrainConfig(dataset=Path("d")))
