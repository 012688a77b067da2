"""The dataset card says what the build did: which gates decided, their thresholds, the regeneration budget, and
this build's figures; with gates off it claims no filtering."""

from __future__ import annotations

import pyarrow.parquet as pq

from tests.test_dataset import write_upstream
from voxemoset.config import parse_config
from voxemoset.stages.dataset import DatasetStage
from voxemoset.store.runner import plan_stage, run_stage

GATES_ON = {"require_emotion": True, "min_emotion_conf": 0.65, "min_dnsmos_ovrl": 2.4, "asr": True,
            "max_wer": 0.2, "max_attempts": 3, "reseed_attempts": 1, "signal": {"min_dbfs": -40.0}}  # fmt: skip
GATES_OFF = {"require_emotion": False, "min_dnsmos_ovrl": None, "asr": False, "max_wer": None, "max_attempts": 1}


def _card(tmp_path, gates: dict) -> tuple[str, dict]:
    out = tmp_path / "build"
    write_upstream(out)
    run_stage(DatasetStage(), parse_config({"out": str(out), "gates": gates}), out)
    return (out / "dataset" / "README.md").read_text(), _figures(out)


def _figures(out) -> dict:
    """This build's figures, recomputed from the published shards."""
    rows = [r for p in sorted((out / "dataset" / "data").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {
        "utterances": len(rows),
        "images": len({r["image_id"] for r in rows}),
        "dnsmos": f"{mean([r['dnsmos_ovrl'] for r in rows]):.3f}",
        "emo_c": f"{mean([r['emo_target_conf'] for r in rows]):.3f}",
        "attempts": f"{mean([r['attempts'] for r in rows]):.3f}",
    }


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _intro(text: str) -> str:
    return text.split("---\n", 2)[2].split("```python", 1)[0]


def test_card_with_every_gate_on(tmp_path):
    text, fig = _card(tmp_path, GATES_ON)
    intro, kept = _intro(text), _section(text, "How clips were kept")
    assert "emotion2vec hearing the intended emotion (probability >= 0.65)" in intro
    assert "DNSMOS OVRL >= 2.4" in intro and "Whisper WER <= 0.2" in intro and "not gated" not in intro
    assert "up to 3 times" in kept and "up to 1 retry with a new seed" in kept
    emotion = next(line for line in kept.splitlines() if line.startswith("| emotion"))
    assert "require_emotion: true, min_emotion_conf: 0.65" in emotion and "**gated**" in emotion
    assert "top emotion is the intended one with probability >= 0.65" in emotion
    assert "OVRL >= 2.4" in kept and "WER <= 0.2" in kept and "-40.0 dBFS" in kept
    assert "recorded only" not in kept
    figures = _section(text, "This build's figures")
    all_row = next(line for line in figures.splitlines() if line.startswith("| all "))
    assert all_row.split(" | ")[1:6] == [str(fig["utterances"]), str(fig["images"]), fig["dnsmos"], fig["emo_c"],
                                         fig["attempts"]]  # fmt: skip
    assert "gates_emotion 2" in figures  # write_upstream leaves one gates reject per split


def test_card_with_gates_off_claims_no_filtering(tmp_path):
    text, fig = _card(tmp_path, GATES_OFF)
    intro, kept = _intro(text), _section(text, "How clips were kept")
    assert "clips are kept only when they pass signal checks (" in intro
    assert "emotion2vec hearing" not in intro and "kept only when emotion2vec" not in text
    assert "emotion2vec's verdicts and DNSMOS scores recorded, not gated" in intro
    emotion = next(line for line in kept.splitlines() if line.startswith("| emotion"))
    assert "require_emotion: false" in emotion and "recorded only" in emotion and "**gated**" not in emotion
    assert "clips were kept whatever emotion it heard" in emotion
    assert "no Whisper transcript was made" in kept and "min_dnsmos_ovrl: null" in kept
    assert "synthesised once: no regeneration" in kept
    figures = _section(text, "This build's figures")
    assert "| train | 30 | 10 |" in figures and f"| all | {fig['utterances']} | {fig['images']} |" in figures


def test_report_settings_key_no_dataset(tmp_path):
    """The report reads a finished build: its settings neither key the dataset nor enter the card."""
    out = tmp_path / "build"
    write_upstream(out)
    plain = parse_config({"out": str(out)})
    other = parse_config({"out": str(out), "report": {"clip_model": "/elsewhere/clip", "nmos_sample": 5, "seed": 1}})
    assert plan_stage(DatasetStage(), other).jobs[0].key == plan_stage(DatasetStage(), plain).jobs[0].key
