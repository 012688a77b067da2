"""emotion2vec_plus through funasr, loaded from a local folder, with its config and weights read by us.

funasr's AutoModel would read the folder itself: config.yaml names the model class and may switch on
`trust_remote_code` to import a `remote_code` file, and funasr loads an empty or mismatched `model.pt`
silently while logging "All keys matched". So we read config.yaml as data (only Emotion2vec with its
CharTokenizer), hand funasr the parsed config (then it reads nothing from the folder), load the tensors
ourselves and compare every one of them with the model's own, failing loudly on any gap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voxemoset.audio import OUT_RATE
from voxemoset.emotions import EMOTIONS
from voxemoset.errors import MissingWeightsError, UserError
from voxemoset.models.devices import device_name
from voxemoset.models.oom import run_halving
from voxemoset.models.safe_load import read_state_dict, short_reason
from voxemoset.quiet import quiet_print

if TYPE_CHECKING:
    import torch

MODEL = "emotion2vec_plus"
DOWNLOAD = "hf download emotion2vec/emotion2vec_plus_large --local-dir {path}"
REQUIRED = ("config.yaml", "model.pt", "tokens.txt", "configuration.json")
# The config.yaml keys passed on to funasr; others (trust_remote_code, remote_code, init_param, ...) are refused.
CONFIG_KEYS = ("model", "model_conf", "tokenizer", "tokenizer_conf")
# emotion2vec's English label halves ("开心/happy" -> "happy").
EMOTION2VEC_TO_EMOTION = {
    "happy": "enjoyment",
    "angry": "anger",
    "disgusted": "disgust",
    "fearful": "fear",
    "sad": "sadness",
}


def _has_interpolation(value: object) -> bool:
    if isinstance(value, dict):
        return any(_has_interpolation(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_interpolation(v) for v in value)
    return isinstance(value, str) and "${" in value


def read_config(path: Path) -> dict:
    """config.yaml as plain data, accepted only if it describes funasr's Emotion2vec with a CharTokenizer."""
    from omegaconf import OmegaConf

    where = path / "config.yaml"
    try:
        # OmegaConf's safe YAML loader, as funasr reads it (it takes `1e-05` as a float, PyYAML as a string).
        cfg = OmegaConf.to_container(OmegaConf.load(where), resolve=False)
    except Exception as exc:  # YAML, OmegaConf and decoding errors alike
        raise UserError(f"{MODEL}: {where} is not a readable YAML mapping ({short_reason(exc)})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"{MODEL}: {where} is not a YAML mapping")
    if cfg.get("model") != "Emotion2vec" or cfg.get("tokenizer") != "CharTokenizer":
        raise UserError(
            f"{MODEL}: {where} names model {cfg.get('model')!r} with tokenizer {cfg.get('tokenizer')!r}; "
            "only Emotion2vec with CharTokenizer is loaded"
        )
    extra = sorted(map(str, set(cfg) - set(CONFIG_KEYS)))
    if extra:
        raise UserError(
            f"{MODEL}: {where} has keys that are not read: {', '.join(extra)} (only {', '.join(CONFIG_KEYS)})"
        )
    if not isinstance(cfg.get("model_conf"), dict) or not isinstance(cfg.get("tokenizer_conf") or {}, dict):
        raise UserError(f"{MODEL}: {where}: model_conf and tokenizer_conf must be mappings")
    if _has_interpolation(cfg):  # ${oc.env:...} and other resolvers would run when funasr reads the config
        raise UserError(f"{MODEL}: {where} holds ${{...}} interpolations; write the values out")
    return cfg


def read_checkpoint(ckpt_path: Path) -> dict[str, torch.Tensor]:
    """model.pt's tensors (funasr's layout: maybe under `model`, maybe `module.`-prefixed), read as data only."""
    state = read_state_dict(ckpt_path, MODEL, DOWNLOAD.format(path=ckpt_path.parent))
    state = state.get("model", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not state:
        raise UserError(f"emotion2vec: {ckpt_path} holds no weights")
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def verify_checkpoint(model, state: dict, ckpt_path: Path) -> None:
    """Every checkpoint tensor must be in the model with the same shape and values, and vice versa."""
    import torch

    own = {k.removeprefix("module."): v for k, v in model.state_dict().items()}
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    differ = [
        k
        for k in own.keys() & state.keys()
        if own[k].shape != state[k].shape or not torch.equal(own[k].cpu(), state[k])
    ]
    if missing or unexpected or differ:
        raise UserError(
            f"emotion2vec: {ckpt_path} does not match the model config: {len(missing)} missing keys "
            f"(e.g. {missing[:2]}), {len(unexpected)} unexpected, {len(differ)} not loaded (e.g. {sorted(differ)[:2]})"
        )


def load_checkpoint(model, state: dict, ckpt_path: Path) -> None:
    """Load the tensors that fit (as funasr does), then fail unless every one of them fit."""
    own = model.state_dict()
    fits = {k: v for k, v in state.items() if k in own and getattr(v, "shape", None) == own[k].shape}
    model.load_state_dict(fits, strict=False)
    verify_checkpoint(model, state, ckpt_path)


class Emotion2vecScorer:
    """funasr `AutoModel` on a local emotion2vec_plus folder; labels mapped to the five emotions."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", batch_size: int = 16):
        path = Path(model_dir).expanduser()
        missing = [f for f in REQUIRED if not (path / f).is_file()]
        if missing:
            # A folder that does not exist makes funasr reach for the network: never hand it one.
            raise MissingWeightsError("emotion2vec_plus", str(path), DOWNLOAD.format(path=path))
        cfg = read_config(path)
        state = read_checkpoint(path / "model.pt")
        from funasr import AutoModel
        from funasr.utils import version_checker

        quiet_print(version_checker)  # its "funasr version: ..." banner, printed on every load

        # With model_conf given, funasr skips reading the folder (configuration.json, config.yaml, remote
        # code); without init_param it loads no weights: both are done above, as data.
        self.model = AutoModel(
            model="Emotion2vec",
            model_conf=cfg["model_conf"],
            tokenizer="CharTokenizer",
            tokenizer_conf={**(cfg.get("tokenizer_conf") or {}), "token_list": str(path / "tokens.txt")},
            model_path=str(path),
            trust_remote_code=False,
            device=device_name(device),
            disable_update=True,
            disable_pbar=True,
            log_level="ERROR",
        )
        load_checkpoint(self.model.model, state, path / "model.pt")
        self.batch_size = batch_size

    def score(self, clips: list[np.ndarray]) -> list[dict[str, float]]:
        """Per clip, the probability of each of the five emotions (of the model's nine labels).

        Out of memory, the whole call runs again at half the batch size, which the scorer keeps (models/oom.py).
        (funasr's Emotion2vec runs a batch's clips one by one, so a smaller batch mostly frees what caches held.)
        """
        if not clips:
            return []
        audio = [np.asarray(c, dtype=np.float32) for c in clips]
        results = run_halving(self, lambda size: self._generate(audio, size), "emotion2vec")
        out = []
        for res in results:
            by_label = {label.split("/")[-1]: float(s) for label, s in zip(res["labels"], res["scores"], strict=True)}
            out.append({EMOTION2VEC_TO_EMOTION[k]: by_label.get(k, 0.0) for k in EMOTION2VEC_TO_EMOTION})
        return out

    def _generate(self, audio: list[np.ndarray], batch_size: int) -> list[dict]:
        import torch

        # funasr sets torch's threads to its own `ncpu` (4) on every call and leaves them so: emotion2vec runs at
        # that count, and whatever runs next (Whisper, F5's retries) at the caller's again, whatever ran before it.
        threads = torch.get_num_threads()
        try:
            return self.model.generate(
                audio, fs=OUT_RATE, granularity="utterance", extract_embedding=False, batch_size=batch_size
            )
        finally:
            torch.set_num_threads(threads)


def top_emotion(scores: dict[str, float]) -> tuple[str, float]:
    """The most probable of the five emotions and its probability."""
    best = max(EMOTIONS, key=lambda e: scores.get(e, 0.0))
    return best, scores.get(best, 0.0)
