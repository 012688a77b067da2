"""Every gate that regenerates: low emotion confidence, low DNSMOS, high WER, each passing on a retry or exhausting
the budget (scripted verdicts on real tiny-F5 retries, as in test_gates.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import yaml

from tests.builders import stage_rows
from tests.gates_fakes import Heard, Listener, Script, ScriptedEmotion, ScriptedQuality, ScriptedTranscriber, clip_key
from tests.gates_fakes import scripted_stage as make_stage
from tests.test_gates import _fresh_copy, speech_out  # noqa: F401 (speech_out: a fixture)
from voxemoset.config import GatesConfig, load_config
from voxemoset.rows import CAPTION_COLUMNS
from voxemoset.stages.gates import retry_seed
from voxemoset.stages.gates.attempts import candidate, judge
from voxemoset.stages.gates.judge import GateModels
from voxemoset.store.runner import run_stage, stage_dir

REPEATED = "A red bus drives slowly slowly past an old stone church."  # 1 word in 10: WER 0.1
SKIPPED = "A red bus drives past an old church."  # 2 words in 10: WER 0.2
SAID = "a red bus drives slowly past an old stone church"  # the caption, as Whisper writes it: WER 0


@dataclass(frozen=True)
class Branch:
    """One gate's run: its settings, the script, img-a's kept scores, img-c's best attempt and reject scores."""

    settings: dict
    script: Script
    kept: dict
    best: int
    rejected: dict


# img-a fails at attempt 1 and passes at 2; img-b passes at once; img-c fails all 3 attempts.
BRANCHES = {
    "emotion_low_confidence": Branch(
        settings={},  # the fixture's min_emotion_conf: 0.5
        script={"img-a": [Heard(conf=0.4), Heard(conf=0.8)],
                "img-c": [Heard(conf=0.3), Heard(conf=0.45), Heard(conf=0.35)]},
        kept={"emo_pred": "anger", "emo_conf": 0.8},
        best=2,
        rejected={"emo_pred": "fear", "emo_conf": 0.45},
    ),
    "dnsmos_low": Branch(
        settings={"min_dnsmos_ovrl": 3.0},
        script={"img-a": [Heard(dnsmos=2.2), Heard(dnsmos=3.6)], "img-b": [Heard(dnsmos=4.0)],
                "img-c": [Heard(conf=0.9, dnsmos=2.1), Heard(conf=0.9, dnsmos=2.8), Heard(conf=0.9, dnsmos=2.4)]},
        kept={"dnsmos_ovrl": 3.6},
        best=2,  # equal emotion: the best DNSMOS
        rejected={"emo_conf": 0.9, "dnsmos_ovrl": 2.8},
    ),
    "wer_high": Branch(
        settings={"asr": True},  # max_wer: the default
        script={"img-a": [Heard(transcript=REPEATED), Heard(transcript=SAID)],
                "img-c": [Heard(conf=0.7, transcript=REPEATED), Heard(conf=0.8, transcript=SKIPPED),
                          Heard(conf=0.75, transcript="")]},
        kept={"asr_text": SAID, "wer": 0.0},  # the caption in Whisper's style: case and punctuation cost nothing
        best=2,  # the most convincing emotion, though not the lowest WER
        rejected={"emo_conf": 0.8, "wer": 0.2},
    ),
}  # fmt: skip


@pytest.fixture(scope="module", params=list(BRANCHES))
def branch(request, speech_out, tmp_path_factory):  # noqa: F811 (speech_out: the imported fixture)
    """One gates run per branch: (branch, kept rows by image, gates rejects by image)."""
    b = BRANCHES[request.param]
    path = _fresh_copy(speech_out, tmp_path_factory.mktemp(request.param))
    data = yaml.safe_load(path.read_text())
    data["gates"].update(b.settings)
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    run_stage(make_stage(cfg, stage_rows(stage_dir(cfg.out, "speech")), script=b.script), cfg, cfg.out)
    rows = {r["image_id"]: r for r in stage_rows(stage_dir(cfg.out, "gates"))}
    speech = {r["id"]: r["image_id"] for r in stage_rows(stage_dir(cfg.out, "speech"))}
    rejects = {speech[r["source"]]: r for r in stage_rows(stage_dir(cfg.out, "gates") / "rejects")}
    return request.param, cfg, rows, rejects


def test_failing_once_then_passing_keeps_the_retry(branch):
    name, cfg, rows, _ = branch
    a = rows["img-a"]
    log = json.loads(a["gate_log"])
    assert a["attempts"] == 2 and [x["fail_reason"] for x in log] == [name, None]
    assert a["tts_seed"] == retry_seed(cfg.gates.seed, a["id"], 2) and a["reference_id"] == log[0]["reference_id"]
    assert {k: a[k] for k in ("emo_conf", "dnsmos_ovrl", "wer")} == {
        k: log[1][k] for k in ("emo_conf", "dnsmos_ovrl", "wer")
    }
    assert {k: a[k] for k in BRANCHES[name].kept} == pytest.approx(BRANCHES[name].kept)
    assert rows["img-b"]["attempts"] == 1


def test_exhausted_budget_rejects_with_best_scores(branch):
    name, _, rows, rejects = branch
    b = BRANCHES[name]
    assert "img-c" not in rows and set(rejects) == {"img-c"}
    c = rejects["img-c"]
    log = json.loads(c["detail"])
    assert c["reason"] == f"gates_{name}" and [x["fail_reason"] for x in log] == [name] * 3
    # The reject carries its best attempt's scores, not its last one's.
    assert {k: c[k] for k in ("emo_pred", "emo_conf", "dnsmos_ovrl", "wer")} == {
        k: log[b.best - 1][k] for k in ("emo_pred", "emo_conf", "dnsmos_ovrl", "wer")
    }
    assert {k: c[k] for k in b.rejected} == pytest.approx(b.rejected)


@pytest.mark.parametrize(
    "heard, reason",
    [
        (Heard(emotion="anger", conf=0.4, dnsmos=1.0, transcript=""), "emotion_mismatch"),
        (Heard(conf=0.4, dnsmos=1.0, transcript=""), "emotion_low_confidence"),
        (Heard(conf=0.9, dnsmos=1.0, transcript=""), "dnsmos_low"),
        (Heard(conf=0.9, dnsmos=4.0, transcript="Two dogs ran."), "wer_high"),
        (Heard(conf=0.9, dnsmos=4.0, transcript="2 dogs run"), None),
    ],
)
def test_the_first_failing_gate_names_the_failure(heard, reason):
    clip = (0.1 * np.random.default_rng(0).standard_normal(32000)).astype(np.float32)
    row = {"id": "u", "image_id": "img", "emotion": "enjoyment", "caption": "Two dogs run.", "speed": 1.0}
    row |= {k: None for k in CAPTION_COLUMNS if k not in row}
    listen = Listener({clip_key(clip): ("u", 1)}, {"u": row}, {"img": [heard]})
    models = GateModels(ScriptedEmotion(listen), ScriptedQuality(listen, real=None), ScriptedTranscriber(listen))
    cfg = GatesConfig(min_dnsmos_ovrl=3.0)
    ref = dict.fromkeys(("reference_id", "reference_corpus", "reference_speaker", "reference_text"))
    (c,), scored = judge([candidate(row, 1, 0, ref)], [clip], models, cfg)
    assert c.fail_reason == reason and c.passed is (reason is None) and scored == 1
