"""Departures from the paper: the paper's recipe departs from nothing, a build lists each stated setting it changes,
and every effect in its card is a count made again here from the build's rejects and gate logs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.test_dataset import make_config, write_upstream
from voxemoset.config import Config, load_config
from voxemoset.departures import STATED, Effects, departures, paper_config, paper_preset, section_of
from voxemoset.stages.dataset import DatasetStage
from voxemoset.store.atomic import write_parquet
from voxemoset.store.runner import run_stage

REPO = Path(__file__).resolve().parents[1]


def test_the_paper_preset_departs_from_nothing_and_states_what_it_chooses():
    assert departures(paper_config(), Effects()) == []
    text = paper_preset().read_text()
    for key in STATED:  # every stated setting is set in the preset itself, not left to a default
        section, name = key.split(".")
        assert f"\n{section}:" in text and f"  {name}:" in text, key
    assert "silent" in text  # and where the paper is silent, the preset says what it chose


def test_the_defaults_depart_where_voxemoset_improves_on_the_paper():
    rows = departures(Config(), Effects())
    assert [r[0] for r in rows] == ["`captions.prompt`", "`captions.checks`", "`gates.max_wer`"]
    assert rows[2][2:4] == ["off", "0.05"]


def test_each_effect_in_the_card_is_counted_from_the_build(tmp_path):
    out = tmp_path / "build"
    write_upstream(out)
    # Two clips dropped by the WER gate in the train split, after three and two failed attempts.
    gates_rejects = out / "stages" / "gates" / "rejects" / "train-00000.parquet"
    table = pq.read_table(gates_rejects).to_pylist()
    for k, tries in enumerate((3, 2)):
        log = [{"attempt": a + 1, "fail_reason": "wer_high", "wer": 0.4} for a in range(tries)]
        table.append(dict(table[0], source=f"u-wer-{k}", reason="gates_wer_high", detail=json.dumps(log)))
    write_parquet(gates_rejects, pa.Table.from_pylist(table, schema=pq.read_schema(gates_rejects)))
    config = make_config(out)
    config = config.model_copy(update={"gates": config.gates.model_copy(update={"max_wer": 0.05})})
    run_stage(DatasetStage(), config, out)

    card = (out / "dataset" / "README.md").read_text()
    rows = {line.split("|")[1].strip(): line.split("|")[5].strip() for line in section_of(card).splitlines()
            if line.startswith("| `")}  # fmt: skip
    stages = out / "stages"
    clip_drops = Counter(r for p in (stages / "gates" / "rejects").glob("*.parquet")
                         for r in pq.read_table(p).column("reason").to_pylist())  # fmt: skip
    failed = Counter()
    for p in [*(stages / "gates").glob("*.parquet"), *(stages / "gates" / "rejects").glob("*.parquet")]:
        column = "gate_log" if p.parent.name == "gates" else "detail"
        for log in pq.read_table(p).column(column).to_pylist():
            failed.update(r["fail_reason"] for r in json.loads(log or "[]") if r.get("fail_reason"))
    caption_drops = Counter(r for p in (stages / "captions" / "rejects").glob("*.parquet")
                       for r in pq.read_table(p).column("reason").to_pylist())  # fmt: skip
    assert clip_drops["gates_wer_high"] == 2 and failed["wer_high"] == 5 and caption_drops["captions_preamble"] == 2
    wer = f"{clip_drops['gates_wer_high']} clips dropped; {failed['wer_high']} synthesis attempts failed it"
    assert rows["`gates.max_wer`"] == wer
    assert rows["`captions.checks`"].startswith(f"preamble: {caption_drops['captions_preamble']} images dropped")
    assert set(rows) == {"`captions.prompt`", "`captions.checks`", "`gates.max_wer`"}


def test_example_configs_parse_and_the_paper_train_preset_pools_by_size():
    from voxemoset.train.config import TrainConfig, load_yaml
    from voxemoset.train.eval.config import EvalConfig

    assert load_config(REPO / "configs" / "paper.yaml").gates.max_wer is None
    train = load_yaml(REPO / "configs" / "paper_train.yaml", TrainConfig)
    assert [(s.split, s.weight) for s in train.sources] == [("train", "proportional"), ("validation", "proportional"),
                                                            ("train", "proportional")]  # fmt: skip
    assert (train.lr, train.batch_size * 8, train.mixed_precision, train.encoder.kind) == (1e-6, 128, "fp16", "sonar")
    evaluation = load_yaml(REPO / "configs" / "paper_eval.yaml", EvalConfig)
    assert [t.sample for t in evaluation.test_sets] == [10000, None, 10000]


@pytest.mark.timeout(1800)  # the shared demo build, if no test ran it yet, then the paper preset's
def test_the_demo_cards_list_the_departures_or_none(demo_build, tmp_path):
    """The default demo's card lists each stated setting it changes with its effect; a demo of the paper preset
    (`voxemoset demo --preset paper`, a fresh process) lists none, and its report repeats the card's table."""
    import subprocess
    import sys

    out, proc = demo_build
    assert proc.returncode == 0, proc.stderr[-2000:]
    section = section_of((out / "dataset" / "README.md").read_text())
    rows = {line.split("|")[1].strip(): line.split("|")[5].strip() for line in section.splitlines()
            if line.startswith("| `")}  # fmt: skip
    assert set(rows) == {"`captions.prompt`", "`captions.checks`", "`gates.require_emotion`"}
    assert (
        rows["`captions.checks`"]
        == "preamble: 0 images dropped; english: 0 images dropped; near_duplicates: 0 images dropped"
    )
    assert all(rows.values())
    assert section in (out / "report" / "report.md").read_text()

    paper = tmp_path / "paper"
    voxemoset = str(Path(sys.executable).with_name("voxemoset"))
    run = subprocess.run([voxemoset, "demo", "--preset", "paper", "--out", str(paper)], capture_output=True, text=True,
                         timeout=1500)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert section_of((paper / "dataset" / "README.md").read_text()).startswith("None: this build follows the paper")
