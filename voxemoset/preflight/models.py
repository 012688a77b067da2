"""Which models the configured stages load, where each is looked for, and how each is found on disk.

Nothing here loads weights: each need's `locate` is the loaders' own locating step (or, for emotion2vec, its
list of required files), so the role, the place looked and the download command read as the loader's would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from voxemoset.errors import MissingWeightsError
from voxemoset.models import emotion2vec
from voxemoset.models.captioners.llava import DEFAULT_MODEL as LLAVA_ID
from voxemoset.models.captioners.llava import MODEL_ROLE as LLAVA_ROLE
from voxemoset.models.clip_score import DEFAULT_CLIP
from voxemoset.models.clip_score import ROLE as CLIP_ROLE
from voxemoset.models.f5tts_files import F5_MODEL, locate_f5, locate_vocos
from voxemoset.models.resolve import looks_like_path, resolve_checkpoint
from voxemoset.models.vocos import VOCOS_MODEL
from voxemoset.models.whisper_asr import DEFAULT_WHISPER as WHISPER_ID
from voxemoset.models.whisper_asr import MODEL_ROLE as WHISPER_ROLE


@dataclass(frozen=True)
class ModelNeed:
    """A model some stage loads: what it is for, the config keys naming it, where they point, and how to find it."""

    role: str
    keys: tuple[str, ...]  # config keys that name it; `voxemoset weights` points them all into its folder
    where: str  # the configured location: a local folder/file or a Hub id in the HF cache
    folder: str  # its folder under `voxemoset weights DIR`
    locate: Callable[[str], object]  # finds it at a location, or raises MissingWeightsError naming the download
    blocking: bool = True

    def label(self) -> str:
        """`role (config.key, other.key)`: what it is and which config keys name it."""
        return f"{self.role} ({', '.join(self.keys)})"


def _hub_model(role: str, default_id: str, where: str) -> tuple[str, Callable[[str], object]]:
    """(folder name, locate) for a transformers checkpoint: a local dir, or a Hub id (downloaded as itself)."""
    hub = default_id if looks_like_path(where) else where
    return hub.rsplit("/", 1)[-1], lambda loc: resolve_checkpoint(loc, role, hub)


def _locate_emotion2vec(loc: str) -> Path:
    """An emotion2vec_plus folder holding every file the scorer reads."""
    path = Path(loc).expanduser()
    if any(not (path / f).is_file() for f in emotion2vec.REQUIRED):
        raise MissingWeightsError(emotion2vec.MODEL, str(path), emotion2vec.DOWNLOAD.format(path=path))
    return path


def _captions(config) -> list[ModelNeed]:
    cfg = config.captions
    if cfg.backend not in ("vllm", "transformers"):
        return []  # table: a file (a source); openai: the server holds the model
    folder, locate = _hub_model(LLAVA_ROLE, LLAVA_ID, cfg.model)
    return [ModelNeed(LLAVA_ROLE, ("captions.model",), cfg.model, folder, locate)]


def _whisper(key: str, where: str) -> ModelNeed:
    folder, locate = _hub_model(WHISPER_ROLE, WHISPER_ID, where)
    return ModelNeed(WHISPER_ROLE, (key,), where, folder, locate)


def _speech(config) -> list[ModelNeed]:
    cfg = config.speech
    f5 = ModelNeed(F5_MODEL, ("speech.checkpoint",), str(cfg.checkpoint), "F5-TTS",
                   lambda loc: locate_f5(Path(loc), cfg.vocab_file if loc == str(cfg.checkpoint) else None))  # fmt: skip
    vocos = ModelNeed(VOCOS_MODEL, ("speech.vocoder",), str(cfg.vocoder), "vocos-mel-24khz", locate_vocos)
    return [f5, vocos]


def _stage_needs(config, stage: str) -> list[ModelNeed]:
    if stage == "captions":
        return _captions(config)
    if stage == "references":
        mead = "mead" in config.references.corpora
        return [_whisper("references.whisper.model", config.references.whisper.model)] if mead else []
    if stage == "speech":
        return _speech(config)
    if stage == "gates":
        g = config.gates
        needs = [ModelNeed(emotion2vec.MODEL, ("gates.emotion_model",), g.emotion_model,
                           "emotion2vec_plus_large", _locate_emotion2vec)]  # fmt: skip
        needs += [_whisper("gates.whisper.model", g.whisper.model)] if g.asr else []
        return needs + (_speech(config) if g.max_attempts > 1 else [])  # regeneration synthesises again
    return []


def _report_needs(config) -> list[ModelNeed]:
    """The report's CLIP, when the config has a report section naming one; it never blocks a build."""
    clip = config.report.clip_model
    if not clip:
        return []
    folder, locate = _hub_model(CLIP_ROLE, DEFAULT_CLIP, clip)
    return [ModelNeed(CLIP_ROLE, ("report.clip_model",), str(clip), folder, locate, blocking=False)]


def model_needs(config, stages: tuple[str, ...], report: bool = False) -> list[ModelNeed]:
    """Every model the given stages load (and the report's, if asked), one entry per location."""
    found: dict[tuple[str, str], ModelNeed] = {}
    needs = [n for s in stages for n in _stage_needs(config, s)] + (_report_needs(config) if report else [])
    for need in needs:
        key = (need.role, need.where)
        if key in found:  # one Whisper for references and gates; one F5 for speech and gates
            old = found[key]
            found[key] = replace(old, keys=tuple(dict.fromkeys(old.keys + need.keys)))
        else:
            found[key] = need
    return list(found.values())
