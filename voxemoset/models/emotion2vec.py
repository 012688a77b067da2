"""emotion2vec_plus through funasr, loaded from a local folder, with its weights verified by us.

funasr loads an empty or mismatched `model.pt` silently and still logs "All keys matched", so after
loading we compare every tensor of the checkpoint with the model's own and fail loudly on any gap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from voxemoset.emotions import EMOTION2VEC_TO_EMOTION, EMOTIONS
from voxemoset.errors import MissingWeightsError, UserError

DOWNLOAD = "hf download emotion2vec/emotion2vec_plus_large --local-dir {path}"
REQUIRED = ("config.yaml", "model.pt", "tokens.txt", "configuration.json")


class EmotionScorer(Protocol):
    """16 kHz clips -> scores over the five VoxEmoset emotions (each the model's own probability)."""

    def score(self, clips: list[np.ndarray]) -> list[dict[str, float]]: ...


def verify_checkpoint(model, ckpt_path: Path) -> None:
    """Every checkpoint tensor must be in the model with the same shape and values, and vice versa."""
    import torch

    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    state = state.get("model", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not state:
        raise UserError(f"emotion2vec: {ckpt_path} holds no weights")
    own = {k.removeprefix("module."): v for k, v in model.state_dict().items()}
    ckpt = {k.removeprefix("module."): v for k, v in state.items()}
    missing, unexpected = sorted(own.keys() - ckpt.keys()), sorted(ckpt.keys() - own.keys())
    differ = [
        k for k in own.keys() & ckpt.keys() if own[k].shape != ckpt[k].shape or not torch.equal(own[k].cpu(), ckpt[k])
    ]
    if missing or unexpected or differ:
        raise UserError(
            f"emotion2vec: {ckpt_path} does not match the model config: {len(missing)} missing keys "
            f"(e.g. {missing[:2]}), {len(unexpected)} unexpected, {len(differ)} not loaded (e.g. {sorted(differ)[:2]})"
        )


class Emotion2vecScorer:
    """funasr `AutoModel` on a local emotion2vec_plus folder; labels mapped to the five emotions."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", batch_size: int = 16):
        path = Path(model_dir).expanduser()
        missing = [f for f in REQUIRED if not (path / f).is_file()]
        if missing:
            # A folder that does not exist makes funasr reach for the network: never hand it one.
            raise MissingWeightsError("emotion2vec_plus", str(path), DOWNLOAD.format(path=path))
        from funasr import AutoModel

        self.model = AutoModel(
            model=str(path), device=device, disable_update=True, disable_pbar=True, log_level="ERROR"
        )
        verify_checkpoint(self.model.model, path / "model.pt")
        self.batch_size = batch_size

    def score(self, clips: list[np.ndarray]) -> list[dict[str, float]]:
        """Per clip, the probability of each of the five emotions (of the model's nine labels)."""
        if not clips:
            return []
        results = self.model.generate(
            [np.asarray(c, dtype=np.float32) for c in clips],
            fs=16000,
            granularity="utterance",
            extract_embedding=False,
            batch_size=self.batch_size,
        )
        out = []
        for res in results:
            by_label = {label.split("/")[-1]: float(s) for label, s in zip(res["labels"], res["scores"], strict=True)}
            out.append({EMOTION2VEC_TO_EMOTION[k]: by_label.get(k, 0.0) for k in EMOTION2VEC_TO_EMOTION})
        return out


def top_emotion(scores: dict[str, float]) -> tuple[str, float]:
    """The most probable of the five emotions and its probability."""
    best = max(EMOTIONS, key=lambda e: scores.get(e, 0.0))
    return best, scores.get(best, 0.0)
