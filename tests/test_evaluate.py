"""`voxemoset evaluate`, the paper's protocol, on tiny random models: every system (speech checkpoint, SD-1.5
zero-shot, SD-1.5 fine-tuned on text, Whisper -> SD-1.5 cascade, and the real images) on three test sets.

Deliberate fakes, because no real thing can run here: FID's Inception (no weights offline; a tiny random feature net
goes through torchmetrics' same FID code) and the Emo-A classifiers that always answer right / always wrong (they
read the row id evaluate attaches to each image). CLIP, Whisper, SD-1.5 and the trained checkpoints are real
architectures at tiny random sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from tests.conftest import write_config
from voxemoset.emotions import EMOTIONS
from voxemoset.errors import MissingWeightsError, UserError
from voxemoset.train.eval.config import EvalConfig


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Tiny models on the CPU: see conftest's `one_torch_thread`."""


class TinyFeatures(torch.nn.Module):
    """A stand-in FID feature extractor (no Inception weights offline): torchmetrics hands it uint8 images."""

    num_features = 8

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(3 * 32 * 32, self.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.nn.functional.interpolate(x.float(), size=(32, 32)).flatten(1) / 255.0)


class Oracle:
    """A deliberate fake Emo-A classifier: it knows each row's intended emotion and answers it (or, `wrong`, the
    next emotion round the list)."""

    def __init__(self, truth: dict[str, str], wrong: bool = False):
        self.truth, self.wrong = truth, wrong

    def __call__(self, images: list) -> list[str]:
        answers = [self.truth[im.info["row_id"]] for im in images]
        return [EMOTIONS[(EMOTIONS.index(a) + 1) % len(EMOTIONS)] for a in answers] if self.wrong else answers


def _truth(dataset: Path) -> dict[str, str]:
    rows = pq.read_table(next((dataset / "data").glob("test-*.parquet")), columns=["id", "emotion"]).to_pylist()
    return {r["id"]: EMOTIONS[r["emotion"]] for r in rows}


@pytest.fixture(scope="module")
def assets(tmp_path_factory, tiny_models) -> dict:
    """Tiny SD-1.5 (with text encoder), Whisper, CLIP, three test sets, a speech and a text checkpoint."""
    from voxemoset.train.config import TrainConfig
    from voxemoset.train.loop import train
    from voxemoset.train.tiny import write_tiny_dataset, write_tiny_sd

    root = tmp_path_factory.mktemp("evaluate")
    a = {
        "root": root,
        "vox": write_tiny_dataset(root / "vox" / "dataset", n_train=4, n_test=6, captions_per_image=1),
        "coco": write_tiny_dataset(root / "corpora" / "spokencoco", 4, 5, captions_per_image=1, emotions=False),
        "flickr": write_tiny_dataset(root / "corpora" / "flickr8k", 4, 3, captions_per_image=1, emotions=False),
        "sd": write_tiny_sd(root / "sd"),
        "whisper": tiny_models["whisper"],
        "clip": tiny_models["clip"],
    }
    base = {"pretrained": str(a["sd"]), "encoder": {"model": str(a["whisper"])}, "sib": {"heads": 2, "width": 16}}
    base |= {"batch_size": 2, "max_steps": 2, "resolution": 32, "num_workers": 0, "mode": "lora", "lr": 1e-2}
    base |= {"cache_dir": root / "cache"}
    a["speech_ckpt"] = train(
        TrainConfig.model_validate(base | {"dataset": a["vox"], "output_dir": root / "s"})
    ).checkpoint
    text = base | {"dataset": a["vox"], "output_dir": root / "t", "conditioning": "text"}
    a["text_ckpt"] = train(TrainConfig.model_validate(text)).checkpoint
    return a


def _config(a: dict, out: Path, **kw) -> EvalConfig:
    data = {
        "output_dir": out,
        "test_sets": [
            {"name": "VoxEmoset", "kind": "voxemoset", "path": a["vox"], "sample": 4, "seed": 1},
            {"name": "SpokenCOCO", "kind": "spokencoco", "path": a["coco"], "sample": "all"},
            {"name": "Flickr8kAudio", "kind": "flickr8k", "path": a["flickr"]},
        ],
        "systems": [
            {"kind": "speech", "checkpoint": a["speech_ckpt"]},
            {"kind": "text_zero_shot"},
            {"kind": "text_finetuned", "checkpoint": a["text_ckpt"]},
            {"kind": "cascade"},
            {"kind": "real"},
        ],
        "models": {"sd": str(a["sd"]), "asr": str(a["whisper"]), "clip": str(a["clip"])},
        "steps": 2,
        "resolution": 32,
        "batch_size": 3,
        "device": "cpu",
    }
    return EvalConfig.model_validate(data | kw)


def test_every_system_fills_the_table(assets, tmp_path):
    from voxemoset.train.eval import evaluate
    from voxemoset.train.eval.metrics import MetricModels

    cfg = _config(assets, tmp_path / "eval")
    right = MetricModels(fid_features=TinyFeatures(), classifier=Oracle(_truth(assets["vox"])))
    table = evaluate(cfg, models=right)
    sets = {t["name"]: t for t in table["test_sets"]}
    assert {n: t["prompts"] for n, t in sets.items()} == {"VoxEmoset": 4, "SpokenCOCO": 5, "Flickr8kAudio": 3}
    assert sets["VoxEmoset"]["real_images"] == 4
    assert table["columns"] == [
        "VoxEmoset/fid", "VoxEmoset/clip_score", "SpokenCOCO/fid", "SpokenCOCO/clip_score",
        "Flickr8kAudio/fid", "Flickr8kAudio/clip_score", "VoxEmoset/emo_a",
    ]  # fmt: skip
    rows = {r["kind"]: r["values"] for r in table["rows"]}
    assert list(rows) == ["speech", "text_zero_shot", "text_finetuned", "cascade", "real"]
    for kind, values in rows.items():
        assert all(v is not None for v in values.values()), kind
        assert values["VoxEmoset/emo_a"] == 1.0  # the always-right classifier
    for name in sets:  # the real images against themselves, through the same code path
        assert rows["real"][f"{name}/fid"] == pytest.approx(0.0, abs=1e-6)
        assert rows["speech"][f"{name}/fid"] > 1e-3
    assert json.loads((cfg.output_dir / "table.json").read_text()) == table
    md = (cfg.output_dir / "table.md").read_text()
    assert "| System | VoxEmoset FID ↓ | VoxEmoset CLIPScore ↑ |" in md and "| Whisper → SD-1.5 (cascade) |" in md
    assert len(list((cfg.output_dir / "images").glob("*/VoxEmoset/*.png"))) == 5 * 4
    assert (
        len(json.loads(next((cfg.output_dir / "images").glob("*cascade*/VoxEmoset/transcripts.json")).read_text())) == 4
    )
    # Same images again (reloaded from disk), a classifier that is always wrong.
    wrong = MetricModels(fid_features=TinyFeatures(), classifier=Oracle(_truth(assets["vox"]), wrong=True))
    again = evaluate(cfg, models=wrong)
    for row, first in zip(again["rows"], table["rows"], strict=True):
        assert row["values"]["VoxEmoset/emo_a"] == 0.0
        assert row["values"]["SpokenCOCO/fid"] == pytest.approx(first["values"]["SpokenCOCO/fid"], rel=1e-6)


def test_seeded_samples_and_default_sizes(assets, tmp_path):
    from voxemoset.train.eval.config import TestSet
    from voxemoset.train.eval.sample import load_sample, sample_indices

    assert sample_indices(1000, 10, 3) == sample_indices(1000, 10, 3)
    assert sample_indices(1000, 10, 3) != sample_indices(1000, 10, 4)
    assert sample_indices(5, 10, 0) == list(range(5)) and len(set(sample_indices(50, 20, 0))) == 20
    vox = TestSet(name="v", kind="voxemoset", path=assets["vox"], sample=3, seed=7)
    first = load_sample(vox, tmp_path / "a").ids
    assert first == load_sample(vox, tmp_path / "b").ids and len(first) == 3
    assert json.loads((tmp_path / "a" / "v-sample.json").read_text())["ids"] == first
    assert TestSet(name="c", kind="spokencoco", path=assets["coco"]).size == 10_000
    assert TestSet(name="f", kind="flickr8k", path=assets["flickr"]).size is None  # all 5k test prompts


def test_eval_config_is_strict(assets, tmp_path):
    from voxemoset.train.config import load_yaml

    good = json.loads(_config(assets, tmp_path).model_dump_json())
    with pytest.raises(UserError, match="guidance"):
        load_yaml(write_config(tmp_path / "a.yaml", good | {"guidance": 3}), EvalConfig)
    with pytest.raises(UserError, match="needs a `checkpoint`"):
        load_yaml(write_config(tmp_path / "b.yaml", good | {"systems": [{"kind": "speech"}]}), EvalConfig)
    with pytest.raises(UserError, match="takes no checkpoint"):
        bad = {"systems": [{"kind": "cascade", "checkpoint": "x"}]}
        load_yaml(write_config(tmp_path / "c.yaml", good | bad), EvalConfig)
    example = load_yaml(Path(__file__).resolve().parents[1] / "configs" / "eval_example.yaml", EvalConfig)
    assert {s.kind for s in example.systems} >= {"speech", "text_zero_shot", "text_finetuned", "cascade"}


def test_missing_weights_name_the_download(assets, tmp_path):
    from voxemoset.train.eval.metrics import check_weights

    cfg = _config(assets, tmp_path / "eval")
    models = cfg.models.model_dump()
    with pytest.raises(MissingWeightsError, match="curl -L -o .*weights-inception-2015-12-05-6726825d.pth"):
        check_weights(cfg.model_copy(update={"models": cfg.models.model_copy(update={"inception": tmp_path / "i"})}))
    clipless = cfg.models.model_validate(models | {"clip": str(tmp_path / "c")})
    with pytest.raises(MissingWeightsError, match=f"hf download openai/clip-vit-large-patch14 --local-dir {tmp_path}"):
        check_weights(cfg.model_copy(update={"models": clipless, "metrics": ("clip_score",)}))
    with pytest.raises(MissingWeightsError, match="emotion classifier"):
        check_weights(cfg.model_copy(update={"metrics": ("emo_a",)}))
    # Through the CLI: one line, exit 1, before any generation.
    path = write_config(tmp_path / "eval.yaml", json.loads(cfg.model_dump_json()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "voxemoset.cli", "evaluate", "-c", str(path)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "Download them with: mkdir -p" in proc.stderr
    assert not (tmp_path / "eval" / "images").exists()


def test_cli_prints_the_table(assets, tmp_path):
    from typer.testing import CliRunner

    from voxemoset.cli import app

    cfg = _config(assets, tmp_path / "eval", metrics=["clip_score"], systems=[{"kind": "real"}])
    path = write_config(tmp_path / "eval.yaml", json.loads(cfg.model_dump_json()))
    result = CliRunner().invoke(app, ["evaluate", "-c", str(path)])
    assert result.exit_code == 0, result.output
    assert "| Real test images (reference) |" in result.output and "VoxEmoset CLIPScore" in result.output
    assert "Emo-A" not in result.output


def test_precomputed_test_embeddings_give_the_same_images(assets, tmp_path):
    """The route SONAR checkpoints take: a test set's `embeddings` replace its audio."""
    import numpy as np
    from PIL import Image

    from voxemoset.train.config import EncoderConfig
    from voxemoset.train.encode import encode_split
    from voxemoset.train.eval import evaluate

    store = encode_split(assets["vox"], "test", EncoderConfig(model=str(assets["whisper"]), embeddings=tmp_path / "e"))
    speech = [{"kind": "speech", "checkpoint": assets["speech_ckpt"]}]
    images = {}
    for name, extra in (("audio", {}), ("frames", {"embeddings": store})):
        test_set = {"name": "VoxEmoset", "kind": "voxemoset", "path": assets["vox"], "sample": 2} | extra
        evaluate(_config(assets, tmp_path / name, metrics=[], systems=speech, test_sets=[test_set]))
        images[name] = sorted((tmp_path / name / "images").glob("*/VoxEmoset/*.png"))
    assert [p.name for p in images["audio"]] == [p.name for p in images["frames"]] and len(images["audio"]) == 2
    for a, b in zip(images["audio"], images["frames"], strict=True):
        diff = np.abs(np.asarray(Image.open(a), dtype=float) - np.asarray(Image.open(b), dtype=float))
        assert diff.mean() < 2.0  # fp16-stored frames: near-identical pixels


def test_emotion_classifier_folds_emoset_labels(tmp_path):
    from PIL import Image

    from voxemoset.train.eval.metrics import ImageEmotionClassifier, emotion_accuracy, fold_emotion
    from voxemoset.train.tiny import write_tiny_emotion_classifier

    assert fold_emotion("Amusement") == fold_emotion("excitement") == "enjoyment"
    assert fold_emotion("awe") is None and fold_emotion("sadness") == "sadness"
    classifier = ImageEmotionClassifier(write_tiny_emotion_classifier(tmp_path / "emo"), batch_size=2)
    images = [Image.new("RGB", (40, 32), (40 * i, 90, 200 - 30 * i)) for i in range(5)]
    predicted = classifier(images)
    assert len(predicted) == 5 and set(predicted) <= set(EMOTIONS)
    assert emotion_accuracy(images, predicted, classifier) == 1.0


def test_missing_system_weights_stop_before_generation(assets, tmp_path):
    from voxemoset.train.eval import evaluate

    cfg = _config(assets, tmp_path / "eval", metrics=[])
    no_sd = cfg.models.model_copy(update={"sd": str(tmp_path / "sd")})
    with pytest.raises(MissingWeightsError, match="hf download stable-diffusion-v1-5/stable-diffusion-v1-5"):
        evaluate(cfg.model_copy(update={"models": no_sd}))
    no_asr = cfg.models.model_copy(update={"asr": str(tmp_path / "asr")})
    with pytest.raises(MissingWeightsError, match="Whisper"):
        evaluate(cfg.model_copy(update={"models": no_asr}))
    wrong = [{"kind": "text_finetuned", "checkpoint": assets["speech_ckpt"]}]
    with pytest.raises(UserError, match="a speech checkpoint"):
        evaluate(_config(assets, tmp_path / "eval", metrics=[], systems=wrong))
    assert not (tmp_path / "eval" / "images").exists()


def test_batched_speech_generation_matches_one_at_a_time(assets):
    """Frames of different lengths denoised together (padded tokens masked) give each one's own image."""
    import numpy as np

    from voxemoset.train.generate import SpeechToImagePipeline

    pipe = SpeechToImagePipeline(assets["speech_ckpt"], "cpu")
    torch.manual_seed(0)
    frames = [torch.randn(n, pipe.sib.spec.in_dim) for n in (9, 30, 17)]
    batched = pipe.batch(frames, [1, 2, 3], guidance_scale=3.0, steps=3, resolution=32)
    for f, seed, image in zip(frames, [1, 2, 3], batched, strict=True):
        alone = pipe(f, guidance_scale=3.0, steps=3, seed=seed, resolution=32)
        assert np.abs(np.asarray(alone, dtype=float) - np.asarray(image, dtype=float)).mean() < 0.5
