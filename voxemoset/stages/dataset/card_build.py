"""What the card says this build did: the gates as configured (on, recorded only, or off) and the build's figures."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from voxemoset.config import GatesConfig
from voxemoset.hub.shards import list_dataset_shards
from voxemoset.markdown import md_table

RECORDED = "recorded only (no clip dropped or regenerated for it)"


def _emotion(g: GatesConfig) -> tuple[str, str]:
    if g.require_emotion:
        return (f"require_emotion: true, min_emotion_conf: {g.min_emotion_conf}",
                f"**gated**: a clip passes only when emotion2vec's top emotion is the intended one with probability "
                f">= {g.min_emotion_conf}")  # fmt: skip
    return (f"require_emotion: false (min_emotion_conf {g.min_emotion_conf} unused)",
            f"{RECORDED}: emotion2vec's verdict is in `emo_pred`, `emo_conf` and `emo_target_conf`, but clips were "
            "kept whatever emotion it heard")  # fmt: skip


def _quality(g: GatesConfig) -> tuple[str, str]:
    if g.min_dnsmos_ovrl is None:
        return "min_dnsmos_ovrl: null", f"{RECORDED}: DNSMOS scores are in the `dnsmos_*` columns"
    return f"min_dnsmos_ovrl: {g.min_dnsmos_ovrl}", f"**gated**: a clip passes only with OVRL >= {g.min_dnsmos_ovrl}"


def _intelligibility(g: GatesConfig) -> tuple[str, str]:
    if not g.asr:
        return "asr: false", "**off**: no Whisper transcript was made; `asr_text` and `wer` are empty"
    if g.max_wer is None:
        return "asr: true, max_wer: null", f"{RECORDED}: Whisper's transcript and its WER are in `asr_text`, `wer`"
    return f"asr: true, max_wer: {g.max_wer}", f"**gated**: a clip passes only with WER <= {g.max_wer}"


def _signal(g: GatesConfig) -> tuple[str, str]:
    s = g.signal
    # No "|" in the text: it would end the Markdown table cell.
    setting = (f"{s.min_s}-{s.max_s} s, RMS >= {s.min_dbfs} dBFS, at most {s.max_clipped_fraction:.2%} of samples "
               f"clipped (magnitude >= {s.clip_level})")  # fmt: skip
    return setting, "**gated**: checked before any model scores a clip"


def gates_summary(g: GatesConfig) -> str:
    """One clause for the card's introduction: which gates decided what was kept."""
    gated = ["signal checks"]
    if g.require_emotion:
        gated.append(f"emotion2vec hearing the intended emotion (probability >= {g.min_emotion_conf})")
    if g.min_dnsmos_ovrl is not None:
        gated.append(f"DNSMOS OVRL >= {g.min_dnsmos_ovrl}")
    if g.asr and g.max_wer is not None:
        gated.append(f"Whisper WER <= {g.max_wer}")
    recorded = [name for on, name in ((not g.require_emotion, "emotion2vec's verdicts"),
                                      (g.min_dnsmos_ovrl is None, "DNSMOS scores"),
                                      (g.asr and g.max_wer is None, "Whisper WER")) if on]  # fmt: skip
    text = "clips are kept only when they pass " + (", ".join(gated[:-1]) + " and " if len(gated) > 1 else "")
    text += gated[-1]
    return text + (f" ({' and '.join(recorded)} recorded, not gated)" if recorded else "")


def budget(g: GatesConfig) -> str:
    """The regeneration budget in words."""
    if g.max_attempts == 1:
        return "Each caption was synthesised once: no regeneration; a clip failing a gate was dropped."
    reseed = min(g.reseed_attempts, g.max_attempts - 1)
    retries = f"up to {reseed} {'retry' if reseed == 1 else 'retries'} with a new seed and the same reference, then "
    return (f"Each caption was synthesised up to {g.max_attempts} times (the first try included): "
            f"{retries if reseed else ''}other references of the same emotion and split. "
            "An utterance keeps its first attempt that passes every gate and is dropped when none does.")  # fmt: skip


def gates_section(g: GatesConfig) -> str:
    """The card's "How clips were kept" section."""
    rows = [("signal", *_signal(g)), ("emotion (emotion2vec)", *_emotion(g)), ("quality (DNSMOS)", *_quality(g)),
            ("intelligibility (Whisper)", *_intelligibility(g))]  # fmt: skip
    table = ["| gate | setting | in this build |", "|---|---|---|", *(f"| {a} | {b} | {c} |" for a, b, c in rows)]
    return budget(g) + "\n\n" + "\n".join(table) + "\n"


def _mean(values: list) -> str:
    values = [v for v in values if v is not None]
    return f"{sum(values) / len(values):.3f}" if values else "n/a"


def build_figures(data: Path) -> list[list]:
    """Per split and all: utterances, images, mean DNSMOS OVRL, Emo-C, mean attempts, share passed at once."""
    columns = ["image_id", "dnsmos_ovrl", "emo_target_conf", "attempts"]
    rows, every = [], {c: [] for c in columns}
    shards = list_dataset_shards(data)
    for split in sorted(shards, key=lambda s: ({"train": 0, "test": 1}.get(s, 2), s)):
        paths = shards[split]
        got = {c: [] for c in columns}
        for path in paths:
            table = pq.read_table(path, columns=columns)
            for c in columns:
                got[c] += table.column(c).to_pylist()
        rows.append([split, *_figures(got)])
        for c in columns:
            every[c] += got[c]
    return rows + [["all", *_figures(every)]] if len(rows) > 1 else rows


def _figures(got: dict) -> list:
    attempts = [a for a in got["attempts"] if a is not None]
    first = f"{sum(a == 1 for a in attempts) / len(attempts):.1%}" if attempts else "n/a"
    return [len(got["image_id"]), len(set(got["image_id"])), _mean(got["dnsmos_ovrl"]), _mean(got["emo_target_conf"]),
            _mean(attempts), first]  # fmt: skip


def figures_section(data: Path, dropped: dict[str, int]) -> str:
    """The card's "This build's figures" section; `dropped`: the gates' rejects by reason."""
    head = ["split", "utterances", "images", "mean DNSMOS OVRL", "Emo-C", "mean attempts", "passed at first try"]
    said = ", ".join(f"{reason} {n}" for reason, n in dropped.items()) if dropped else "none"
    notes = ("Mean DNSMOS OVRL is over every clip (`voxemoset report` computes the paper's NMOS on a random sample); "
             "Emo-C is the mean emotion2vec probability of the intended emotion (`emo_target_conf`).\n\n"
             f"Utterances the gates dropped after their attempts ran out: {said}.")  # fmt: skip
    return md_table(head, build_figures(data)) + "\n\n" + notes + "\n"
