"""A threshold change on a built chain: the gates stage re-judges stored scores instead of running its models again.

The demo chain on the 384-image EmoSet tree of `bench_scale.py` (20 gates shards), each stage in this process (the
threads runner's bytes). Measured in one run: the gates stage's first run; then `gates.min_dnsmos_ovrl` set to 0.5
(the change the issue timed: every kept clip still passes), then to the median OVRL of the kept clips (about half of
them now fail, so each gets its next attempt), each time running gates and dataset again. Recorded: seconds of each, the clips each gates run scored and synthesized, the seconds the second run spent
making and scoring the new attempts (model loads included), what is left (re-judging, reading, writing) as a share of
the first run, and the published files rewritten or kept. Added to results/scale.json as `threshold_change`.

Run from the repo root: `.venv/bin/python benchmarks/bench_rejudge.py [--images 384]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml
from bench_scale import sized_config

REPO = Path(__file__).resolve().parents[1]
GOAL_SHARE = 0.05  # of the gates stage's first run, besides the new attempts


def _gates_stats(out: Path) -> dict:
    from voxemoset.store.reading import stage_markers

    stats = [m["stats"] for m in stage_markers(out, "gates").values()]
    return {k: round(sum(s.get(k, 0) for s in stats), 2) for k in ("scored", "synthesized", "new_attempts_s")}


def _run(cfg_path: Path, stage: str, overrides: dict | None = None) -> tuple[dict, float]:
    from voxemoset.config import load_config
    from voxemoset.stages import get_stage
    from voxemoset.store.runner import run_stage

    cfg = load_config(cfg_path, overrides)
    t0 = time.perf_counter()
    summary = run_stage(get_stage(stage), cfg, cfg.out)
    return summary, round(time.perf_counter() - t0, 2)


def _change(cfg_path: Path, out: Path, threshold: float, first_s: float) -> dict:
    """Gates then dataset again with `gates.min_dnsmos_ovrl: threshold`: what ran, and what was rewritten."""
    data = out / "dataset" / "data"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in data.glob("*.parquet")}
    override = {"gates.min_dnsmos_ovrl": threshold}
    again, again_s = _run(cfg_path, "gates", override)
    stats = _gates_stats(out)  # every gates shard's key changed: each marker is this run's
    assert again["computed"] == again["shards"], again
    dataset, dataset_s = _run(cfg_path, "dataset", override)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in data.glob("*.parquet")}
    rest_s = round(again_s - stats["new_attempts_s"], 2)
    return {
        "min_dnsmos_ovrl": threshold,
        "gates_s": again_s,
        "shards_recomputed": again["computed"],
        **stats,
        "rest_s": rest_s,
        "rest_share_of_first": round(rest_s / first_s, 4),
        "meets_goal": rest_s <= GOAL_SHARE * first_s,
        "dataset": {
            "seconds": dataset_s,
            "jobs_computed": dataset["computed"],
            "jobs": dataset["shards"],
            "files_rewritten": sum(1 for n, v in after.items() if before.get(n) != v),
            "files_kept": sum(1 for n, v in after.items() if before.get(n) == v),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=384)
    args = parser.parse_args()
    from voxemoset.demo import demo_config, write_demo_inputs

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_demo_inputs(root / "demo")
        cfg_path = sized_config(demo_config(root / "demo"), root, args.images, str(args.images))
        out = Path(yaml.safe_load(cfg_path.read_text())["out"])
        for stage in ("images", "captions", "references", "speech"):
            _run(cfg_path, stage)
        first, first_s = _run(cfg_path, "gates")
        first_stats = _gates_stats(out)
        _run(cfg_path, "dataset")
        ovrl = [x for p in sorted((out / "stages" / "gates").glob("*.parquet"))
                for x in pq.read_table(p, columns=["dnsmos_ovrl"]).column(0).to_pylist()]  # fmt: skip
        # The change (0.5: every kept clip still passes), then the median (half of them fail now).
        changes = [_change(cfg_path, out, t, first_s) for t in (0.5, round(statistics.median(ovrl), 4))]
    result = {
        "what": f"gates.min_dnsmos_ovrl None -> 0.5 -> the median OVRL, on the {args.images}-image build; "
        "rest_s: a change's gates seconds less those spent making and scoring new attempts (loads included)",
        "gates_shards": first["shards"],
        "first_run": {"gates_s": first_s, **first_stats},
        "goal_share": GOAL_SHARE,
        "changes": changes,
    }
    path = REPO / "benchmarks" / "results" / "scale.json"
    scale = json.loads(path.read_text())
    scale["threshold_change"] = result
    path.write_text(json.dumps(scale, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
