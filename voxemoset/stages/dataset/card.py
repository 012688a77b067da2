"""The dataset card: YAML header that `datasets` and the Hub read, then licences and provenance."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import yaml

from voxemoset.code_version import code_version, commit_label
from voxemoset.config import output_settings
from voxemoset.departures import DEPARTURES_HEADING
from voxemoset.departures import to_markdown as departures_markdown
from voxemoset.emotions import EMOTIONS
from voxemoset.hub.card_header import hub_header
from voxemoset.hub.features import COLUMNS, DESCRIPTIONS, features
from voxemoset.hub.shards import SplitStats
from voxemoset.markdown import md_table
from voxemoset.stages.dataset.card_build import figures_section, gates_section, gates_summary

# Config sections that describe the builder's machine (paths, workers) or what happens after the data is built
# (publishing, the report), not the data: left out of the card and of the dataset's key.
MACHINE_KEYS = ("out", "sources", "orchestration", "publish", "report", "corpora")
# Settings that are not thresholds (where a model lives, how it runs); the rest of gates/captions is.
_NOT_THRESHOLDS = ("model", "device", "batch_size", "max_new_tokens", "dtype", "backend", "table", "openai", "vllm",
                   "prompt", "lexicon", "temperature", "top_p", "asr", "whisper", "seed")  # fmt: skip

LICENCES = """\
VoxEmoset is derived data; every part keeps the terms of what it came from, and the strictest of them
(non-commercial research use) applies to the whole:

- **Images and attributes**: EmoSet-118K (Yang et al., ICCV 2023), distributed by its authors for
  non-commercial research use under the EmoSet terms; the pictures keep their original copyright.
- **Reference voices** (each clip's voice and emotion come from one reference recording):
  - CREMA-D: Open Database License (ODbL) v1.0; its contents under the Database Contents License v1.0.
  - RAVDESS: Creative Commons Attribution-NonCommercial-ShareAlike 4.0 (CC BY-NC-SA 4.0).
  - MEAD: the MEAD authors' terms of use (research use; see the MEAD project page).
- **Synthetic speech**: produced by F5-TTS, whose released checkpoints are licensed for non-commercial use.
- **Captions**: produced by LLaVA-OneVision; see its model card for terms.

The speech imitates real people's voices: do not use it to impersonate or identify them.
The code that built it (voxemoset) is MIT-licensed."""


def _label(value: object, local: bool = False) -> str | None:
    """A model's Hub id, or a local checkpoint's folder/file name (never the builder's paths)."""
    if value is None:
        return None
    if local:
        return Path(str(value)).name
    from voxemoset.models.resolve import model_label

    return model_label(str(value))


def _scrub(value):
    """Config data with absolute paths cut to their last part: the card describes data, not a machine."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str) and value.startswith(("/", "~")):
        return Path(value).name
    return value


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def recorded_settings(config) -> dict:
    """The settings a dataset records in its card and is keyed by: what shapes outputs, less where the machine
    keeps things (speed-only settings such as batch sizes and devices are in neither)."""
    return {k: v for k, v in output_settings(config).items() if k not in MACHINE_KEYS}


def provenance(config, prompt_text: str | None) -> dict:
    """Model ids, thresholds and the config (less machine paths and speed-only settings) the dataset was built with."""
    data = _scrub(recorded_settings(config))
    gates, captions, speech = data.get("gates") or {}, data.get("captions") or {}, data.get("speech") or {}
    models = {
        "captions": _label(captions.get("model")),
        "speech": _label(speech.get("checkpoint"), local=True),
        "vocoder": _label(speech.get("vocoder"), local=True),
        "emotion": _label(gates.get("emotion_model"), local=True),
        "quality": f"DNSMOS P.835 + P.808 (speechmos {_version('speechmos')})",
        "asr": _label((gates.get("whisper") or {}).get("model")) if gates.get("asr", True) else None,
        "reference_transcripts": _label(((data.get("references") or {}).get("whisper") or {}).get("model")),
    }

    def thresholds(section: dict) -> dict:
        return {k: v for k, v in section.items() if not any(word in k for word in _NOT_THRESHOLDS)}

    return {
        "code": code_version(),
        "models": models,
        "prompt": prompt_text,
        "thresholds": {"captions": thresholds(captions), "gates": thresholds(gates)},
        "config": data,
    }


def card_header(config, splits: dict[str, SplitStats]) -> dict:
    """The YAML header: configs/data_files, features, splits and sizes, licence, tags."""
    cfg = config.dataset
    described = {
        "pretty_name": cfg.pretty_name,
        "license": cfg.license,
        **({"license_name": cfg.license_name} if cfg.license_name else {}),
        **({"license_link": cfg.license_link} if cfg.license_link else {}),
        "language": ["en"],
        "task_categories": ["text-to-image", "text-to-speech", "audio-classification"],
        "tags": ["emotion", "speech", "synthetic-speech", "speech-to-image", "emoset"],
    }
    return hub_header(described, features(), splits)


def card_text(config, splits: dict[str, SplitStats], counts: dict, prompt_text: str | None, data: Path | None = None,
              gate_rejects: dict[str, int] | None = None, departed: list[list[str]] | None = None) -> str:  # fmt: skip
    """The whole README.md; `counts` holds per-split `images` and per-split per-emotion row counts; `data` is the
    folder of the written files, whose figures the card states with the gates' rejects (left out without it)."""
    cfg = config.dataset
    prov = provenance(config, prompt_text)
    header = yaml.safe_dump(card_header(config, splits), sort_keys=False, allow_unicode=True, width=1000)
    split_rows = [
        [n, s.rows, counts["images"].get(n, 0), len(s.files), f"{s.file_bytes / 1e6:.1f} MB"] for n, s in splits.items()
    ]
    emotion_rows = [[e, *(counts["emotions"].get(n, {}).get(e, 0) for n in splits)] for e in EMOTIONS]
    code = prov["code"]
    model_rows = [[role, f"`{m}`"] for role, m in prov["models"].items() if m]
    parts = [
        f"---\n{header}---\n",
        f"# {cfg.pretty_name}\n",
        "Emotional spoken descriptions paired with emotional images, built as in *Seeing What You Say: "
        "Expressive Image Generation from Speech*: EmoSet-118K images of five emotions are captioned without "
        "emotional words, each caption is spoken by F5-TTS prompted with an emotional reference clip "
        f"(CREMA-D, MEAD, RAVDESS), and {gates_summary(config.gates)}.\n",
        '```python\nfrom datasets import load_dataset\n\nds = load_dataset("<this repo>")\n```\n',
        "## Splits\n",
        md_table(["split", "utterances", "images", "files", "size"], split_rows) + "\n",
        "## How clips were kept\n",
        gates_section(config.gates),
        *([DEPARTURES_HEADING, departures_markdown(departed)] if departed is not None else []),
        *(["## This build's figures\n", figures_section(data, gate_rejects or {})] if data is not None else []),
        "## Utterances per emotion\n",
        md_table(["emotion", *splits], emotion_rows) + "\n",
        "## Columns\n",
        md_table(["column", "meaning"], [[f"`{c}`", DESCRIPTIONS[c]] for c in COLUMNS]) + "\n",
        "## Licences\n",
        LICENCES + ("\n\n" + cfg.license_notes if cfg.license_notes else "") + "\n",
        "## Provenance\n",
        f"Built by voxemoset {code['voxemoset']}, commit `{commit_label(code)}`.\n",
        md_table(["role", "model"], model_rows) + "\n",
        "### Captioning prompt\n",
        "```text\n" + (prompt_text or "(prompt file not found when the dataset was built)").strip() + "\n```\n",
        "### Thresholds\n",
        "```yaml\n" + yaml.safe_dump(prov["thresholds"], sort_keys=True) + "```\n",
        "### Config (machine paths reduced to names)\n",
        "```yaml\n" + yaml.safe_dump(prov["config"], sort_keys=True) + "```\n",
    ]
    return "\n".join(parts)
