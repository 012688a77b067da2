"""One small check per kind of thing a build needs: source folders, model files, system tools, the GPU."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from voxemoset.config import Config
from voxemoset.corpora import corpus_module, corpus_roots
from voxemoset.errors import MissingWeightsError, UserError
from voxemoset.preflight.items import Item, problem, ready
from voxemoset.preflight.models import ModelNeed
from voxemoset.resources import prompt_path
from voxemoset.stages import get_stage

# What each corpus folder should hold, in the words of its reader's error.
_LAYOUT = {
    "emoset": "EmoSet-118K tree",
    "cremad": "CREMA-D AudioWAV/",
    "ravdess": "RAVDESS Actor_XX/",
    "mead": "MEAD speaker folders",
}


def check_source(config: Config, corpus: str) -> Item:
    """A configured corpus folder, checked by its reader's own layout test (nothing is scanned)."""
    key = f"sources.{corpus}"
    try:
        (root,) = roots = corpus_roots(corpus, config.sources)
        corpus_module(corpus).check_tree(*roots)
    except UserError as e:
        return problem("source", key, str(e).removeprefix(f"{key}: "))
    return ready("source", key, f"{root} ({_LAYOUT[corpus]})")


def check_sources(config: Config, stages: tuple[str, ...]) -> list[Item]:
    """The corpus folders (and the captions table) the given stages read."""
    corpora = (["emoset"] if "images" in stages else []) + (
        list(config.references.corpora) if "references" in stages else []
    )
    items = [check_source(config, c) for c in corpora]
    if "captions" in stages and config.captions.backend != "table":
        prompt = prompt_path(config.captions)
        if not prompt.is_file():
            items.append(problem("source", "captions.prompt", f"file not found: {prompt}"))
    if "captions" in stages and config.captions.backend == "table":
        table = config.captions.table
        if table is None:
            items.append(problem("source", "captions.table", "not set (the table backend reads its answers from it)"))
        elif not Path(table).is_file():
            items.append(problem("source", "captions.table", f"file not found: {table}"))
        else:
            items.append(ready("source", "captions.table", str(table)))
    return items


def check_model(need: ModelNeed) -> Item:
    """A model's files at its configured place, found as its loader finds them (no weights read)."""
    try:
        found = need.locate(need.where)
    except MissingWeightsError as e:
        return problem("model", need.label(), f"no weights at {e.where}; download: {e.command}", need.blocking)
    except UserError as e:
        return problem("model", need.label(), str(e), need.blocking)
    where = found.checkpoint if hasattr(found, "checkpoint") else found  # F5: the checkpoint file picked
    return ready("model", need.label(), str(where))


def check_tools(config: Config, stages: tuple[str, ...]) -> list[Item]:
    """ffmpeg, which decodes MEAD's m4a files."""
    if "references" not in stages or "mead" not in config.references.corpora:
        return []
    exe = shutil.which("ffmpeg")
    if exe is None:
        return [problem("tool", "ffmpeg [references: MEAD m4a]", "not on PATH: install it (apt-get install ffmpeg)")]
    return [ready("tool", "ffmpeg [references: MEAD m4a]", exe)]


def _devices(config: Config, stages: tuple[str, ...]) -> list[tuple[str, str]]:
    """(config key, device) of every torch model the stages run, when the device names a GPU."""
    c, r, s, g = config.captions, config.references, config.speech, config.gates
    regen = g.max_attempts > 1
    wanted = [
        ("captions.device", c.device, "captions" in stages and c.backend == "transformers"),
        ("references.whisper.device", r.whisper.device, "references" in stages and "mead" in r.corpora),
        ("speech.device", s.device, "speech" in stages or ("gates" in stages and regen)),
        ("gates.emotion_device", g.emotion_device, "gates" in stages),
        ("gates.whisper.device", g.whisper.device, "gates" in stages and g.asr),
    ]
    return [(key, dev) for key, dev, used in wanted if used and dev.startswith("cuda")]


def visible_gpus() -> int:
    """GPUs this process may use, counted without importing torch: `nvidia-smi -L`, within CUDA_VISIBLE_DEVICES."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    try:
        listed = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    count = sum(line.startswith("GPU ") for line in listed.splitlines())
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = min(count, len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"]))
    return count


def check_gpu_count(config: Config, stages: tuple[str, ...]) -> list[Item]:
    """Several GPUs under the threads runner: the model stages would use one of them (Ray gives each its worker)."""
    if config.orchestration.task_runner != "threads" or not any(get_stage(s).uses_gpu for s in stages):
        return []
    count = visible_gpus()
    if count < 2:
        return []
    detail = (
        f"{count} GPUs visible, but the threads runner runs the model stages on one of them; set "
        "orchestration.task_runner: ray (a local cluster: one worker per GPU, each loading the models once)"
    )
    return [problem("gpu", "orchestration.task_runner", detail, blocking=False)]


def check_gpu(config: Config, stages: tuple[str, ...]) -> list[Item]:
    """A device set to cuda / cuda:N needs that GPU visible to torch (`auto` falls back to the CPU by itself)."""
    asked = _devices(config, stages)
    if not asked:
        return check_gpu_count(config, stages)  # torch is imported only when a GPU is asked for
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    items = []
    for key, dev in asked:
        index = dev.partition(":")[2]
        index = int(index) if index.isdigit() else 0
        if index >= count:
            seen = f"torch sees {count} GPU{'s' * (count != 1)}"
            items.append(problem("gpu", key, f"{dev} asked for, but {seen}; set it to cpu or auto"))
        else:
            items.append(ready("gpu", key, f"{dev}: {torch.cuda.get_device_name(index)}"))
    return items + check_gpu_count(config, stages)
