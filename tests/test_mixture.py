"""Training on a weighted mixture (the paper: SpokenCOCO + VoxEmoset): the sampling weights hold, batches are
reproducible and resumable, emotion-free rows train the same loss; the text-conditioning mode of the trainer.

Tiny random models on the CPU; the SpokenCOCO stand-in is a published-layout corpus with `emotion` null.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_config
from voxemoset.errors import UserError
from voxemoset.train.config import TrainConfig
from voxemoset.train.mixture import WeightedBatches, mixture_weights

REPO = Path(__file__).resolve().parents[1]
# Over 4000 batches of 8 (32k samples) a share's standard deviation is at most 0.003: 0.015 is 5 of them.
SHARE_TOLERANCE = 0.015


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Tiny models on the CPU: see conftest's `one_torch_thread`."""


def _shares(sampler: WeightedBatches, batches: int) -> np.ndarray:
    counts = Counter()
    for b in range(batches):
        counts.update(sampler.global_batch(b)[1])
    return np.array([counts[k] for k in range(len(sampler.sizes))]) / (batches * sampler.batch_size)


@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.8, 0.2), (1.0, 2.0, 1.0)])
def test_sampling_weights_hold_over_many_batches(weights):
    sizes = [7, 50, 3][: len(weights)]  # the weights, not the dataset sizes, decide the shares
    sampler = WeightedBatches(sizes, weights, batch_size=8, seed=3)
    expected = np.array(weights) / sum(weights)
    assert np.abs(_shares(sampler, 4000) - expected).max() < SHARE_TOLERANCE
    indices, which = sampler.global_batch(0)
    offsets = np.cumsum([0, *sizes])
    assert all(offsets[w] <= i < offsets[w + 1] for i, w in zip(indices, which, strict=True))


def test_proportional_weights_follow_the_row_counts(tmp_path):
    """`weight: proportional` pools the datasets, as the paper does: each one's share of the samples is its share of
    the rows, within 0.015 over 4,000 batches; mixing it with numbers is one clear error."""
    sizes = [591, 208, 40]  # SpokenCOCO : VoxEmoset : a third, as thousands of utterances
    weights = mixture_weights(sizes, ["proportional"] * 3)
    sampler = WeightedBatches(sizes, weights, batch_size=8, seed=5)
    assert np.abs(_shares(sampler, 4000) - np.array(sizes) / sum(sizes)).max() < 0.015
    assert mixture_weights([3, 4], [0.5, 2]) == [0.5, 2.0]
    from voxemoset.train.config import load_yaml

    config = {"datasets": [{"path": "a", "weight": "proportional"}, {"path": "b", "weight": 1.0}]}
    with pytest.raises(UserError, match="proportional on some datasets"):
        load_yaml(write_config(tmp_path / "c.yaml", config), TrainConfig)


def test_batches_are_seeded_resumable_and_split_across_ranks():
    a = WeightedBatches([10, 20], [0.3, 0.7], batch_size=4, seed=0)
    assert list(a) == list(WeightedBatches([10, 20], [0.3, 0.7], batch_size=4, seed=0))
    assert list(a) != list(WeightedBatches([10, 20], [0.3, 0.7], batch_size=4, seed=1))
    straight = [batch for epoch in range(3) for batch in (a.set_position(epoch, 0), list(a))[1]]
    a.set_position(1, 2)
    assert list(a) == straight[a.per_epoch + 2 : 2 * a.per_epoch]
    ranks = [WeightedBatches([10, 20], [0.3, 0.7], batch_size=2, seed=0, rank=r, world=2) for r in (0, 1)]
    for b0, b1, whole in zip(*ranks, (a.global_batch(n)[0] for n in range(a.per_epoch)), strict=False):
        assert b0 + b1 == whole


@pytest.mark.parametrize(("sizes", "world"), [([10, 20], 2), ([4, 6], 2), ([3, 50], 4), ([1000, 600_000], 8)])
def test_a_global_batch_holds_distinct_rows_of_each_dataset(sizes, world):
    """No two ranks (nor two samples of one rank) train on one row in a step, unless a dataset has fewer rows than
    were drawn from it: then its rows repeat as evenly as they can."""
    sampler = WeightedBatches(sizes, [0.5, 0.5], batch_size=4, seed=0, world=world)
    for number in range(300):
        indices, which = sampler.global_batch(number)
        for k, size in enumerate(sizes):
            rows = [i for i, w in zip(indices, which, strict=True) if w == k]
            counts = Counter(rows).values()
            assert (max(counts, default=1) == 1) if len(rows) <= size else (max(counts) - min(counts) <= 1)
            assert all(sampler.offsets[k] <= i < sampler.offsets[k] + size for i in rows)
    assert sampler.global_batch(7) == sampler.global_batch(7)  # a function of (seed, batch number): resumable


def test_mixture_config_rules(tmp_path):
    from voxemoset.train.config import load_yaml

    both = {"dataset": "d", "datasets": [{"path": "a"}]}
    with pytest.raises(UserError, match="either `dataset`"):
        load_yaml(write_config(tmp_path / "a.yaml", both), TrainConfig)
    with pytest.raises(UserError, match="distinct names"):
        load_yaml(write_config(tmp_path / "b.yaml", {"datasets": [{"path": "x/d"}, {"path": "y/d"}]}), TrainConfig)
    with pytest.raises(UserError, match="weight"):
        load_yaml(write_config(tmp_path / "c.yaml", {"datasets": [{"path": "a", "weight": 0}]}), TrainConfig)
    with pytest.raises(UserError, match="lora or full"):
        load_yaml(write_config(tmp_path / "d.yaml", {"dataset": "d", "conditioning": "text"}), TrainConfig)
    example = load_yaml(REPO / "configs" / "train_example.yaml", TrainConfig)
    assert [s.weight for s in example.sources] == [0.5, 0.5] and example.sources[0].split == "train"
    assert example.encoder.kind == "sonar"  # the paper's preferred encoder is what the example offers


@pytest.fixture(scope="module")
def assets(tmp_path_factory, tiny_models) -> dict:
    from voxemoset.train.tiny import write_tiny_dataset, write_tiny_sd

    root = tmp_path_factory.mktemp("mixture")
    return {
        "root": root,
        "vox": write_tiny_dataset(root / "vox" / "dataset", n_train=4, n_test=2),
        "coco": write_tiny_dataset(root / "corpora" / "spokencoco", n_train=6, n_test=2, emotions=False),
        "flickr": write_tiny_dataset(root / "corpora" / "flickr8k", n_train=4, n_test=2, emotions=False),
        "sd": write_tiny_sd(root / "sd"),
        "whisper": tiny_models["whisper"],
    }


def _cfg(a: dict, out: Path, **kw) -> TrainConfig:
    base = {
        "datasets": [{"path": a["coco"], "weight": 0.75}, {"path": a["vox"], "weight": 0.25, "name": "voxemoset"}],
        "output_dir": out,
        "cache_dir": a["root"] / "cache",
        "pretrained": str(a["sd"]),
        "encoder": {"model": str(a["whisper"])},
        "sib": {"heads": 2, "width": 16},
        "lr": 1e-3,
        "batch_size": 4,
        "max_steps": 8,
        "resolution": 32,
        "num_workers": 0,
        "checkpoint_every": 4,
        "log_every": 1,
        "mode": "lora",
    }
    return TrainConfig.model_validate(base | kw)


def test_encode_names_every_dataset_missing_sonar_embeddings_in_one_line(assets, tmp_path):
    """`voxemoset encode` on a SONAR mixture: both datasets' commands in one `error:` line, not one per attempt."""
    import subprocess
    import sys

    cfg = {
        "datasets": [{"path": str(assets["coco"])}, {"path": str(assets["vox"]), "name": "voxemoset"}],
        "encoder": {"kind": "sonar", "model": str(tmp_path / "sonar.pt"), "embeddings": str(tmp_path / "emb")},
    }
    proc = subprocess.run(
        [sys.executable, "-m", "voxemoset.cli", "encode", "-c", str(write_config(tmp_path / "t.yaml", cfg))],
        capture_output=True,
        text=True,
    )
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith("error: SONAR embeddings are missing for 2 datasets"), proc.stderr
    assert "(spokencoco, voxemoset)" in last and last.count("scripts/encode_sonar.py") == 2
    assert last.count("setup_sonar_env.sh") == 1 and "Traceback" not in proc.stderr
    for label in ("spokencoco", "voxemoset"):
        assert f"--out {tmp_path / 'emb' / label}" in last


def test_trains_on_a_spokencoco_voxemoset_mixture_and_resumes(assets, tmp_path):
    from voxemoset.train.encode import embeddings_dir
    from voxemoset.train.loop import train

    cfg = _cfg(assets, tmp_path / "straight")
    result = train(cfg)
    assert len(result.losses) == 8 and all(np.isfinite(result.losses))
    # The rows trained on are exactly those the sampler draws, by weight.
    sampler = WeightedBatches([6, 4], [0.75, 0.25], batch_size=4, seed=0)
    drawn = Counter(w for b in range(8) for w in sampler.global_batch(b)[1])
    assert result.samples == {"spokencoco": drawn[0], "voxemoset": drawn[1]}
    assert abs(_shares(sampler, 4000)[0] - 0.75) < SHARE_TOLERANCE
    # Corpora side by side keep their own embedding folders.
    coco, flickr = (embeddings_dir(assets[k], cfg.encoder) for k in ("coco", "flickr"))
    assert coco != flickr and (coco / "train-00000-of-00001.safetensors").is_file()
    # Stopped at step 4 and resumed: the same loss curve.
    out = tmp_path / "resumed"
    train(_cfg(assets, out, max_steps=4))
    train(_cfg(assets, out), resume="latest")
    logged = [json.loads(line)["loss"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert np.allclose(logged, result.losses, rtol=1e-5, atol=1e-6)


def test_text_conditioning_trains_the_unet_on_emotion_free_rows(assets, tmp_path):
    from voxemoset.train.loop import train

    cfg = _cfg(assets, tmp_path / "text", conditioning="text", datasets=None, dataset=assets["coco"], max_steps=3)
    result = train(cfg.model_copy(update={"cond_dropout": 0.5}))
    assert len(result.losses) == 3 and all(np.isfinite(result.losses))
    names = {p.name for p in result.checkpoint.iterdir()}
    assert "pytorch_lora_weights.safetensors" in names and "sib" not in names
    saved = TrainConfig.model_validate_json((result.checkpoint / "train_config.json").read_text())
    assert saved.conditioning == "text"
