"""Departures from the paper: each setting the paper states that a build changes, with what it did in that build.

The paper's recipe is `configs/paper.yaml`; `STATED` names the settings the paper states (the preset's other
values are choices where it is silent, so no build departs on them). A build's dataset card and report show one
row per stated setting whose value differs: the paper's value, the build's, and its effect counted from the build's
own rejects and gate logs.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pyarrow.parquet as pq

from voxemoset.config import Config, load_config
from voxemoset.markdown import md_table
from voxemoset.resources import data_dir, prompt_path, prompts_dir

DEPARTURES_HEADING = "## Departures from the paper\n"
# The settings the paper states, with what it says.
STATED: dict[str, str] = {
    "captions.prompt": "its App. A captioning prompt",
    "captions.min_words": "captions of 8 to 15 words",
    "captions.max_words": "captions of 8 to 15 words",
    "captions.checks": "captions hold no emotional or subjective words; no other filter",
    "captions.visible_expressions": "avoid emotional or subjective expressions",
    "references.corpora": "references from CREMA-D, MEAD and RAVDESS",
    "gates.require_emotion": "emotion2vec must hear the intended emotion; failures are re-generated",
    "gates.min_dnsmos_ovrl": "no speech-quality filter",
    "gates.max_wer": "no intelligibility filter",
}
# A caption check and the reject reason it gives.
CHECK_REASONS = {"preamble": "captions_preamble", "english": "captions_not_english",
                 "emotional_words": "captions_emotional_word", "near_duplicates": "captions_near_duplicate"}  # fmt: skip
# The captions a stated caption setting drops, by their reject reason, and how the table names them.
CAPTION_DROPS = {"captions.visible_expressions": ("captions_visible_expression", "a visible expression"),
                 "captions.min_words": ("captions_too_short", "too short"),
                 "captions.max_words": ("captions_too_long", "too long")}  # fmt: skip
# The gate a stated gate setting turns on, by the fail reason its attempts and drops carry.
GATE_REASONS = {"gates.max_wer": "wer_high", "gates.min_dnsmos_ovrl": "dnsmos_low"}


@dataclass
class Effects:
    """What a build's rejects and gate logs count: images dropped by caption reason, clips dropped by gate reason,
    and failed synthesis attempts by gate reason (each one a re-synthesis or, at the last attempt, a drop)."""

    caption_drops: Counter = field(default_factory=Counter)
    clip_drops: Counter = field(default_factory=Counter)
    failed_attempts: Counter = field(default_factory=Counter)


def measure(caption_rejects: list[Path], gates_shards: list[Path], gates_rejects: list[Path]) -> Effects:
    """Count a build's effects from its captions rejects, gates shards (their gate logs) and gates rejects."""
    found = Effects()
    for path in caption_rejects:
        found.caption_drops.update(pq.read_table(path, columns=["reason"]).column("reason").to_pylist())
    logs = []
    for path in gates_shards:
        logs += pq.read_table(path, columns=["gate_log"]).column("gate_log").to_pylist()
    for path in gates_rejects:
        table = pq.read_table(path, columns=["reason", "detail"])
        found.clip_drops.update(table.column("reason").to_pylist())
        logs += table.column("detail").to_pylist()
    for log in logs:
        try:
            rounds = json.loads(log or "[]")
        except json.JSONDecodeError:
            continue
        found.failed_attempts.update(r["fail_reason"] for r in rounds if isinstance(r, dict) and r.get("fail_reason"))
    return found


def paper_preset() -> Path:
    """`configs/paper.yaml`, the paper's recipe."""
    return data_dir("configs") / "paper.yaml"


@cache
def paper_config() -> Config:
    """The paper's recipe, as a Config."""
    return load_config(paper_preset())


def _value(config: Config, key: str):
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def paper_prompt(paper: Config) -> Path:
    """The preset's prompt file: its path is relative to the checkout's `prompts/` folder."""
    stated = Path(paper.captions.prompt)
    return stated if stated.is_absolute() else prompts_dir() / stated.name


def _same_prompt(build: Config, paper: Config) -> bool:
    ours, theirs = prompt_path(build.captions).resolve(), paper_prompt(paper).resolve()
    if ours == theirs:
        return True
    return ours.is_file() and theirs.is_file() and ours.read_bytes() == theirs.read_bytes()


def _shown(key: str, value) -> str:
    if key == "captions.prompt":
        return f"`{Path(value).name}`" if value else "`caption.txt` (voxemoset's)"
    if value is None:
        return "off"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _effect(key: str, build: Config, paper: Config, fx: Effects) -> str:
    if key == "captions.checks":
        added = [c for c in build.captions.checks if c not in paper.captions.checks]
        dropped = [c for c in paper.captions.checks if c not in build.captions.checks]
        parts = [f"{c}: {fx.caption_drops[CHECK_REASONS[c]]} images dropped" for c in added]
        return "; ".join(parts + [f"{c}: not checked" for c in dropped])
    if key in CAPTION_DROPS:
        reason, named = CAPTION_DROPS[key]
        return f"{fx.caption_drops[reason]} images dropped for {named}"
    if key in GATE_REASONS:
        reason = GATE_REASONS[key]
        return (f"{fx.clip_drops['gates_' + reason]} clips dropped; {fx.failed_attempts[reason]} synthesis attempts "
                f"failed it")  # fmt: skip
    if key == "gates.require_emotion" and not build.gates.require_emotion:
        return "every clip kept whatever emotion2vec heard (its verdict recorded only)"
    if key == "captions.prompt":
        if build.captions.backend == "table":
            return "none: the table backend reads stored answers and asks no prompt"
        return "other captions (not measurable within one build)"
    return "other inputs (not measured)"


def departures(build: Config, fx: Effects, paper: Config | None = None) -> list[list[str]]:
    """Rows (setting, what the paper states, paper value, this build's value, effect in this build) for every
    stated setting this build changes; none for a build of the paper's recipe."""
    paper = paper or paper_config()
    rows = []
    for key, says in STATED.items():
        if key == "captions.prompt":
            if _same_prompt(build, paper):
                continue
        elif _value(build, key) == _value(paper, key):
            continue
        rows.append([f"`{key}`", says, _shown(key, _value(paper, key)), _shown(key, _value(build, key)),
                     _effect(key, build, paper, fx)])  # fmt: skip
    return rows


def to_markdown(rows: list[list[str]]) -> str:
    """The card's and report's section body."""
    if not rows:
        return "None: this build follows the paper's recipe (`configs/paper.yaml`) wherever the paper states it.\n"
    head = ["setting", "the paper", "paper value", "this build", "effect in this build"]
    return md_table(head, rows) + "\n"


def section_of(card: str) -> str | None:
    """The departures section's body as a card states it (the report shows the same table), or None."""
    start = card.find(DEPARTURES_HEADING)
    if start < 0:
        return None
    body = card[start + len(DEPARTURES_HEADING) :]
    end = body.find("\n## ")
    return (body if end < 0 else body[: end + 1]).strip() + "\n"
