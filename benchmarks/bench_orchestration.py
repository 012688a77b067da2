"""Prefect overhead: the demo build through the `build` flow vs the stage functions called directly.

Both sides do the same work: every stage of the chain on the demo config, then the report, in one
process; the flow side runs shard tasks on the default (threads) task runner and writes its artifacts.

Run from the repo root: `.venv/bin/python benchmarks/bench_orchestration.py`. A Prefect server is
started first (as a user of the UI has one: the CLI's temporary server, with its own Prefect home); its
start-up is not counted. Writes results/orchestration.json.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def save_result(name: str, result: dict) -> None:
    """Write `result` to results/<name>.json and show it."""
    (REPO / "benchmarks" / "results" / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _private_prefect(home: Path) -> None:
    """A Prefect home of its own (fresh SQLite database), quiet, and no configured server: set before Prefect is
    imported, which reads its settings once."""
    os.environ.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                      PREFECT_LOGGING_LEVEL="WARNING", PREFECT_SERVER_LOGGING_LEVEL="WARNING")  # fmt: skip
    os.environ.pop("PREFECT_API_URL", None)


def _flow_run_seconds(since: datetime) -> dict[str, float]:
    """Seconds each stage flow run (and the report flow run) of the build took, from the server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        after = FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since))
        runs = client.read_flow_runs(flow_run_filter=after, sort=FlowRunSort.START_TIME_ASC, limit=200)
        names = {f: client.read_flow(f).name for f in {r.flow_id for r in runs}}
    return {
        names[r.flow_id].removeprefix("stage-"): (r.end_time - r.start_time).total_seconds()
        for r in runs
        if names[r.flow_id] != "build" and r.end_time
    }


def main() -> None:
    from voxemoset.config import load_config
    from voxemoset.demo import write_demo_inputs
    from voxemoset.report import write_report
    from voxemoset.stages import BUILD_CHAIN, get_stage
    from voxemoset.store.digest import build_digest
    from voxemoset.store.runner import run_stage

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "prefect").mkdir()
        _private_prefect(tmp / "prefect")
        from flows.local_server import prefect_api

        cfg_path = write_demo_inputs(tmp / "demo")

        with prefect_api():
            from flows.stage_flows import build

            cfg = load_config(cfg_path, {"out": str(tmp / "warm")})
            build(str(cfg_path), {"out": str(tmp / "warm")})  # imports and client set-up, not counted
            direct_stages = {}
            t0 = time.perf_counter()
            cfg = load_config(cfg_path, {"out": str(tmp / "direct")})
            for name in BUILD_CHAIN:
                t = time.perf_counter()
                run_stage(get_stage(name), cfg, cfg.out)
                direct_stages[name] = time.perf_counter() - t
            t = time.perf_counter()
            write_report(cfg.out)  # the build flow ends with the report too
            direct_stages["report"] = time.perf_counter() - t
            direct_s = time.perf_counter() - t0
            started = datetime.now(UTC)
            t0 = time.perf_counter()
            build(str(cfg_path), {"out": str(tmp / "prefect-run")})
            prefect_s = time.perf_counter() - t0
            flow_stages = _flow_run_seconds(started)
        same = build_digest(tmp / "direct") == build_digest(tmp / "prefect-run")
    result = {
        "stages": list(BUILD_CHAIN) + ["report"],
        "task_runner": "threads",
        "cpus": os.cpu_count(),
        "direct_s": round(direct_s, 3),
        "prefect_s": round(prefect_s, 3),
        "overhead_ratio": round(prefect_s / direct_s, 2),
        # Per stage: direct call vs its flow run (start to end, as the Prefect server recorded it).
        "per_stage_s": {
            name: {"direct": round(direct_stages[name], 2), "flow": round(flow_stages.get(name, float("nan")), 2)}
            for name in direct_stages
        },
        "same_dataset": same,
    }
    save_result("orchestration", result)


if __name__ == "__main__":
    main()
