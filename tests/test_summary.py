"""A build watched: the demo (run as a user runs it, output piped) prints one line per finished shard naming its
stage, shard, items and rate, and ends with a summary whose figures (`<out>/summary.json`) are recomputed here
from the stages' shards and rejects tables, read with pyarrow alone."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from voxemoset.stages import BUILD_CHAIN, get_stage

pytestmark = pytest.mark.timeout(1200)
SHARD_LINE = re.compile(r"^(\w+): shard (\S+) done \((\d+)/(\d+)\), (\d+) items, ([\d.]+) items/s(, ETA \d+ s)?$")


@pytest.fixture(scope="module")
def demo(demo_build) -> tuple[Path, str, dict]:
    out, proc = demo_build
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout, json.loads((out / "summary.json").read_text())


def _recount(out: Path, stage: str) -> tuple[int, Counter]:
    folder = out / "stages" / stage
    rows = sum(pq.read_metadata(p).num_rows for p in folder.glob("*.parquet"))
    reasons = Counter(r for p in (folder / "rejects").glob("*.parquet")
                      for r in pq.read_table(p, columns=["reason"]).column("reason").to_pylist())  # fmt: skip
    return rows, reasons


def test_piped_output_has_one_line_per_finished_shard(demo):
    out, printed, _ = demo
    lines = [m for line in printed.splitlines() if (m := SHARD_LINE.match(line.strip()))]
    for stage in BUILD_CHAIN:
        mine = [m for m in lines if m[1] == stage]
        shards = sorted(p.stem for p in (out / "stages" / stage).glob("*.parquet"))
        assert sorted(m[2] for m in mine) == shards, stage  # each shard once, by name
        assert [int(m[3]) for m in mine] == list(range(1, len(shards) + 1))
        assert {int(m[4]) for m in mine} == {len(shards)}
        rows, reasons = _recount(out, stage)
        assert sum(int(m[5]) for m in mine) == rows + sum(reasons.values()), stage
        assert all(float(m[6]) > 0 for m in mine if int(m[5]))


def test_summary_json_recomputed_from_shards_and_rejects(demo):
    out, printed, summary = demo
    stages = {s["stage"]: s for s in summary["stages"]}
    assert list(stages) == list(BUILD_CHAIN)
    for name, s in stages.items():
        rows, reasons = _recount(out, name)
        assert (s["rows_out"], s["rejects"], s["items_in"]) == (
            rows,
            sum(reasons.values()),
            rows + sum(reasons.values()),
        )
        top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        assert s["top_rejects"] == [[r, n] for r, n in top], name
        assert s["shards"] == s["computed"] == len(list((out / "stages" / name).glob("*.parquet")))
        # A fresh build computes every item: the rate is all of them over the stage's wall time.
        assert s["items_computed"] == s["items_in"]
        assert s["items_per_s"] == pytest.approx(s["items_in"] / s["seconds"], rel=1e-2)
        assert (s["model_load_s"] is not None) == get_stage(name).uses_gpu, name
    assert summary["wall_s"] >= max(s["seconds"] for s in stages.values())
    speech = stages["speech"]
    assert speech["model_load_s"] > 0  # F5-TTS and Vocos load up front
    assert "build summary" in printed and "items/s" in printed
