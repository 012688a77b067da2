"""Training: the SIB + SD-1.5 UNet on VoxEmoset shards (`train`), speech -> image (`generate`), metrics (`evaluate`).

Heavy libraries (torch, diffusers, peft, accelerate, torchmetrics) are imported inside the functions that use them.
"""

from __future__ import annotations

from pathlib import Path


def train_from_yaml(config: Path, resume: str | None = None, progress: bool = True):
    """`voxemoset train -c CONFIG [--resume latest]`."""
    from voxemoset.train.config import TrainConfig, load_yaml
    from voxemoset.train.loop import train

    return train(load_yaml(config, TrainConfig), resume=resume, progress=progress)


def evaluate_from_yaml(config: Path, progress: bool = True) -> dict:
    """`voxemoset evaluate -c EVAL_CONFIG`."""
    from voxemoset.train.config import load_yaml
    from voxemoset.train.eval import evaluate
    from voxemoset.train.eval.config import EvalConfig

    return evaluate(load_yaml(config, EvalConfig), progress=progress)
