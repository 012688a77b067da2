"""`voxemoset evaluate` checks, before generating anything, that a SONAR checkpoint has precomputed frames of every
test set's split; every missing one is named with the command that writes it, in one error line."""

from __future__ import annotations

import pytest

from voxemoset.errors import UserError
from voxemoset.train.config import TrainConfig
from voxemoset.train.eval.config import EvalConfig
from voxemoset.train.eval.preflight import check_speech_inputs
from voxemoset.train.tiny import write_tiny_dataset


@pytest.fixture
def setup(tmp_path):
    vox = write_tiny_dataset(tmp_path / "vox" / "dataset", n_train=2, n_test=3)
    coco = write_tiny_dataset(tmp_path / "corpora" / "spokencoco", 2, 2, emotions=False)
    checkpoint = tmp_path / "runs" / "checkpoint-10"
    checkpoint.mkdir(parents=True)
    train = TrainConfig(dataset=vox, encoder={"kind": "sonar", "model": "weights/sonar/spenc.eng.pt"})
    (checkpoint / "train_config.json").write_text(train.model_dump_json())
    return tmp_path, vox, coco, checkpoint


def _config(vox, coco, checkpoint, embeddings: dict | None = None) -> EvalConfig:
    embeddings = embeddings or {}
    tests = [
        {"name": "VoxEmoset", "kind": "voxemoset", "path": str(vox), "embeddings": embeddings.get("vox")},
        {"name": "SpokenCOCO", "kind": "spokencoco", "path": str(coco), "embeddings": embeddings.get("coco")},
    ]
    return EvalConfig.model_validate({"test_sets": tests, "systems": [{"kind": "speech", "name": "SONAR + SIB",
                                                                       "checkpoint": str(checkpoint)}]})  # fmt: skip


def test_missing_sonar_frames_are_all_named_with_their_command(setup):
    root, vox, coco, checkpoint = setup
    with pytest.raises(UserError) as caught:
        check_speech_inputs(_config(vox, coco, checkpoint))
    message = str(caught.value)
    assert "\n" not in message and message.startswith("system SONAR + SIB reads SONAR frames: ")
    for name, path in (("VoxEmoset", vox), ("SpokenCOCO", coco)):
        assert f"{name}: set its `embeddings`" in message
        assert f"scripts/encode_sonar.py --dataset {path} --split test" in message


def test_frames_in_place_pass(setup):
    root, vox, coco, checkpoint = setup
    folders = {"vox": root / "emb" / "vox", "coco": root / "emb" / "coco"}
    for key, path in (("vox", vox), ("coco", coco)):
        folders[key].mkdir(parents=True)
        for shard in (path / "data").glob("test-*.parquet"):
            (folders[key] / f"{shard.stem}.safetensors").write_bytes(b"")
    check_speech_inputs(_config(vox, coco, checkpoint, {k: str(v) for k, v in folders.items()}))
    (folders["coco"] / next(folders["coco"].iterdir()).name).unlink()
    with pytest.raises(UserError, match=r"SpokenCOCO: 1 of 1 shards lack SONAR frames"):
        check_speech_inputs(_config(vox, coco, checkpoint, {k: str(v) for k, v in folders.items()}))
