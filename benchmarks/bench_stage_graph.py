"""The demo build with independent stages side by side (the default) against one stage at a time, in one run.

Both builds are `voxemoset build` in a fresh process, as a user runs it, on the demo's config under the threads
runner, reporting to one Prefect server started first (not counted); the only difference is
`orchestration.parallel_stages`. Each build starts from an empty `out` (the demo's fixtures and tiny models are
written once, before either). Recorded: wall seconds of each build and their ratio, seconds per stage flow run,
and whether both builds wrote the same dataset. Alternating the order over `--rounds` shows the noise.

Run from the repo root: `.venv/bin/python benchmarks/bench_stage_graph.py [--rounds 1]`. Writes
results/stage_graph.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import yaml
from bench_cluster import _build
from bench_orchestration import REPO, _private_prefect, save_result

sys.path.insert(0, str(REPO))

from tests.prefect_server import prefect_env, prefect_server  # noqa: E402
from voxemoset.store.digest import build_digest  # noqa: E402

MODES = {"side_by_side": True, "one_at_a_time": False}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1, help="builds per mode, alternating which goes first")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "prefect").mkdir()
        _private_prefect(tmp / "prefect")
        from voxemoset.demo import write_demo_inputs

        data = yaml.safe_load(write_demo_inputs(tmp / "demo").read_text())
        configs = {}
        for mode, parallel in MODES.items():
            data.setdefault("orchestration", {})["parallel_stages"] = parallel
            configs[mode] = tmp / f"{mode}.yaml"
            configs[mode].write_text(yaml.safe_dump(data))
        with prefect_server(tmp / "prefect") as api:
            os.environ["PREFECT_API_URL"] = api
            env = prefect_env(tmp / "prefect", api)
            for r in range(args.rounds):
                for mode in list(MODES)[:: 1 if r % 2 == 0 else -1]:
                    runs[mode].append(_build(configs[mode], tmp / f"{mode}-{r}", env))
        same = len({build_digest(tmp / f"{m}-{r}") for m in MODES for r in range(args.rounds)}) == 1
    wall = {m: round(sum(x["wall_s"] for x in v) / len(v), 1) for m, v in runs.items()}
    result = {
        "demo": "voxemoset build on the demo config, threads runner, fresh process per build",
        "machine": {"cpus": os.cpu_count()},
        "rounds": args.rounds,
        "builds": runs,
        "mean_wall_s": wall,
        "side_by_side_over_one_at_a_time": round(wall["side_by_side"] / wall["one_at_a_time"], 3),
        "same_dataset": same,
    }
    save_result("stage_graph", result)


if __name__ == "__main__":
    main()
