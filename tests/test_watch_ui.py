"""The Prefect UI during a run: a `voxemoset build` against a real server, its artifacts read through the API while
it runs. Each stage's progress artifact moves as its shards finish and says shards, items, rate and ETA; the build
flow run ends with its summary artifact beside the report's link."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.demo_chain import small_demo
from tests.prefect_server import prefect_env

pytestmark = pytest.mark.timeout(900)
VOXEMOSET = str(Path(sys.executable).with_name("voxemoset"))


def _artifacts(http: httpx.Client, **filters) -> list[dict]:
    return http.post("/artifacts/filter", json={"artifacts": filters, "limit": 200}).json()


def test_progress_artifacts_update_while_the_build_runs(server, tmp_path):
    home, api = server
    cfg_path, _ = small_demo(tmp_path / "demo", limit_per_split=3)
    out = tmp_path / "out"
    proc = subprocess.Popen([VOXEMOSET, "build", "-c", str(cfg_path), "--out", str(out)], env=prefect_env(home, api),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    seen: dict[str, set[tuple[float, str]]] = {}  # artifact id -> the (progress, description) states polled
    with httpx.Client(base_url=api, timeout=10) as http:
        while proc.poll() is None:
            for a in _artifacts(http, type={"any_": ["progress"]}):
                seen.setdefault(a["id"], set()).add((a["data"], a["description"] or ""))
            time.sleep(0.3)
        stdout, stderr = proc.communicate()
        assert proc.returncode == 0, stderr[-3000:]
        final = {a["id"]: a for a in _artifacts(http, type={"any_": ["progress"]})}
        (summary,) = _artifacts(http, key={"any_": ["build-summary"]})
    # Mid-run states, seen through the API while the build ran: a stage part-way, with its rate and ETA.
    midway = [(p, d) for states in seen.values() for p, d in states if 0 < p < 100]
    assert midway, seen
    assert any("shards" in d and "items/s" in d and "ETA" in d for _, d in midway), midway
    # Every stage's artifact ends at 100 %, naming its stage and its shards.
    by_stage = {a["description"].split(":")[0]: a for a in final.values() if a["data"] == 100.0}
    assert {"images", "captions", "references", "speech", "gates", "dataset"} <= set(by_stage)
    for a in by_stage.values():
        if "/" in a["description"]:  # computed in this run (a stage with nothing to do says "shards done")
            done, total = a["description"].split(": ", 1)[1].split(" shards")[0].split("/")
            assert done == total, a["description"]
    # The summary: a table per stage, written to summary.json, beside the report's link.
    text = summary["data"]
    assert "| stage | items in | rows out |" in text and f"{out / 'summary.json'}" in text
    assert f"{out / 'report' / 'index.html'}" in text
    # The terminal (piped here) stays voxemoset's: a line per finished shard, the summary, no Prefect task lines.
    assert "Task run" not in stdout + stderr and "build summary" in stdout
    assert re.search(r"^gates: shard \S+ done \(\d+/\d+\), \d+ items, [\d.]+ items/s", stdout, re.M), stdout[-3000:]
