"""Tiny random checkpoints of every model the chain uses, each in the on-disk layout its production loader reads.

Weights are random (seeded), so outputs are meaningless; the point is that the real loading and inference
code paths run offline, fast, on a CPU.
"""

from __future__ import annotations

from pathlib import Path

from voxemoset.models.tiny.clip import write_clip
from voxemoset.models.tiny.emotion2vec import write_emotion2vec
from voxemoset.models.tiny.f5tts import write_f5tts, write_vocos
from voxemoset.models.tiny.llava_onevision import write_llava_onevision
from voxemoset.models.tiny.whisper import write_whisper

__all__ = [
    "write_all",
    "write_clip",
    "write_emotion2vec",
    "write_f5tts",
    "write_llava_onevision",
    "write_vocos",
    "write_whisper",
]

BUILDERS = {
    "llava_onevision": write_llava_onevision,
    "f5tts": write_f5tts,
    "vocos": write_vocos,
    "whisper": write_whisper,
    "emotion2vec": write_emotion2vec,
    "clip": write_clip,
}


def write_all(out_dir: Path, seed: int = 0) -> dict[str, Path]:
    """Write every tiny model under `out_dir/<name>/`; return {name: directory}."""
    out_dir = Path(out_dir)
    dirs = {name: build(out_dir / name, seed=seed) for name, build in BUILDERS.items()}
    for path in out_dir.rglob("*"):
        if path.is_file():
            path.chmod(0o644)  # safetensors writes 0600; keep the folders usable when copied or mounted
    return dirs
