"""Scores apart from verdicts: a threshold change re-judges the stored attempts' scores, runs the models only on the
clips it newly needs (the next attempt of an utterance that now fails), and gives what a build made with that
threshold from the start gives, byte for byte, rewriting only the published files whose rows changed."""

from __future__ import annotations

import shutil
import statistics

import pyarrow.parquet as pq
import pytest

from tests.demo_chain import small_demo
from voxemoset.config import load_config
from voxemoset.stages import get_stage
from voxemoset.stages.gates import GatesStage
from voxemoset.stages.gates.stage import _default_gate_models
from voxemoset.store.digest import build_digest
from voxemoset.store.runner import list_shards, run_stage, stage_dir


class Counted:
    """The real scorers, counting the clips each is handed (what the stage's own stats could not prove)."""

    def __init__(self):
        self.clips = {"emotion": 0, "quality": 0, "asr": 0}

    def __call__(self, config):
        models = _default_gate_models(config)
        for role, method in (("emotion", "score"), ("quality", "score"), ("asr", "transcribe")):
            model = getattr(models, role)
            if model is not None:
                setattr(model, method, self._counting(role, getattr(model, method)))
        return models

    def _counting(self, role, call):
        def counted(clips):
            self.clips[role] += len(clips)
            return call(clips)

        return counted


@pytest.fixture(scope="module")
def speech_built(tmp_path_factory):
    """The demo chain up to speech (4 speech shards of 6 utterances), in a folder the tests copy."""
    cfg_path, _ = small_demo(tmp_path_factory.mktemp("verdicts"), limit_per_split=2, orchestration={"cpu_threads": 1})
    cfg = load_config(cfg_path)
    for name in ("images", "captions", "references", "speech"):
        run_stage(get_stage(name), cfg, cfg.out)
    return cfg_path, cfg.out


def _gates_and_dataset(cfg_path, out, counted: Counted, **gates) -> dict:
    cfg = load_config(cfg_path, {"out": str(out), **{f"gates.{k}": v for k, v in gates.items()}})
    summary = run_stage(GatesStage(gate_models=counted), cfg, cfg.out)
    run_stage(get_stage("dataset"), cfg, cfg.out)
    return summary


def test_a_threshold_change_rescores_nothing_and_equals_a_fresh_build(speech_built, tmp_path):
    cfg_path, built = speech_built
    first, again = tmp_path / "first", tmp_path / "fresh"
    shutil.copytree(built, first)
    shutil.copytree(built, again)
    counted = Counted()
    _gates_and_dataset(cfg_path, first, counted)
    utterances = sum(pq.read_metadata(p).num_rows for p in list_shards(stage_dir(first, "speech")))
    assert counted.clips == {"emotion": utterances, "quality": utterances, "asr": utterances}
    ovrl = [
        x for p in list_shards(stage_dir(first, "gates")) for x in pq.read_table(p).column("dnsmos_ovrl").to_pylist()
    ]
    threshold = statistics.median(ovrl)  # about half of the first attempts fail it now
    published = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (first / "dataset" / "data").glob("*.parquet")}

    rejudged = Counted()
    summary = _gates_and_dataset(cfg_path, first, rejudged, min_dnsmos_ovrl=threshold)
    assert summary["computed"] == summary["shards"] >= 4  # every gates shard re-judged...
    new = rejudged.clips["emotion"]  # ...but only the next attempts of the utterances that now fail were scored
    failing = sum(1 for x in ovrl if x < threshold)
    assert 0 < new == failing and rejudged.clips == {"emotion": new, "quality": new, "asr": new}

    fresh = Counted()
    _gates_and_dataset(cfg_path, again, fresh, min_dnsmos_ovrl=threshold)
    assert fresh.clips["emotion"] == utterances + new
    assert build_digest(first, ("gates", "dataset")) == build_digest(again, ("gates", "dataset"))
    # A published file whose rows did not change kept its bytes and was not even rewritten.
    for path, (content, mtime) in published.items():
        if path.is_file() and path.read_bytes() == content:
            assert path.stat().st_mtime_ns == mtime, path.name
