"""Prefect flows on a real server: deployments run through the API, kill-and-resume, Ray task runner."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.demo_chain import build_direct, markers, small_demo
from tests.prefect_server import prefect_env, run_deployment
from voxemoset.config import load_config
from voxemoset.corpora.export.writer import run_corpus
from voxemoset.fixtures import spokencoco as coco_fixture
from voxemoset.stages import BUILD_CHAIN
from voxemoset.store.digest import build_digest
from voxemoset.store.runner import stage_dir

VOXEMOSET = str(Path(sys.executable).with_name("voxemoset"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Demo inputs, a config with one image per shard (many kill points), and the direct build's digest."""
    # The demo chain on 3 images per split (18 utterances), one image per shard: many kill points, quick builds.
    cfg_path, direct = small_demo(tmp_path_factory.mktemp("demo"), limit_per_split=3)
    digest = build_direct(cfg_path, direct)
    return cfg_path, digest, sum(markers(direct).values())


def _build_cmd(cfg_path: Path, out: Path, *extra: str) -> list[str]:
    return [VOXEMOSET, "build", "-c", str(cfg_path), "--out", str(out), *extra]


def test_library_never_imports_prefect():
    code = "import sys, voxemoset.cli, voxemoset.demo, voxemoset.stages.images; print('prefect' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    lib = Path(__file__).resolve().parents[1] / "voxemoset"
    offenders = [p for p in lib.rglob("*.py") if "import prefect" in p.read_text() or "from prefect" in p.read_text()]
    assert offenders == []


def test_deployment_run_through_the_server_api(server, demo, tmp_path):
    """As the UI's Run button does: `build`, then every `stage-<name>` deployment (in chain order) and `report`."""
    home, api = server
    cfg_path, expected, _ = demo
    env = prefect_env(home, api)
    log = tmp_path / "serve.log"
    serving = subprocess.Popen(
        [VOXEMOSET, "deploy", "-c", str(cfg_path)], env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    out = tmp_path / "from-ui"
    params = {"config_path": str(cfg_path), "overrides": {"out": str(out)}}
    try:
        with httpx.Client(base_url=api, timeout=10) as http:
            deadline = time.monotonic() + 120
            wanted = {"build", "report", "corpus", *(f"stage-{s}" for s in BUILD_CHAIN)}
            # serve() registers the deployments one after another: wait for all of them.
            while not wanted <= {f["name"] for f in http.post("/flows/filter", json={}).json()} or len(
                http.post("/deployments/filter", json={}).json()
            ) < len(wanted):
                assert time.monotonic() < deadline and serving.poll() is None, log.read_text()
                time.sleep(0.5)
            names = {d["name"] for d in http.post("/deployments/filter", json={}).json()}
            assert names == {"voxemoset"}
            state = run_deployment(http, "build", params, deadline + 180)
            assert state["type"] == "COMPLETED", log.read_text()[-3000:]
            arts = http.post(
                "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [state["flow_run_id"]]}}}
            ).json()
            by_key = {a["key"]: a for a in arts}
            assert {"build-counts", "build-rejects"} <= by_key.keys()
            assert '"stage": "images"' in by_key["build-counts"]["data"] or "images" in str(by_key["build-counts"])
            assert "| references | cremad_known_bad_clip | 1 |" in by_key["build-rejects"]["data"]
            report = http.post("/artifacts/filter", json={"artifacts": {"key": {"any_": ["build-report"]}}}).json()
            assert report and "index.html" in report[0]["data"]
            sub_arts = http.post("/artifacts/filter", json={"artifacts": {"type": {"any_": ["progress"]}}}).json()
            assert any(a["data"] == 100.0 for a in sub_arts)
            # Each stage flow loads by its entrypoint in the served process (a flow made in a function could not).
            for flow in [*(f"stage-{s}" for s in BUILD_CHAIN), "report"]:
                state = run_deployment(http, flow, params, time.monotonic() + 120)
                assert state["type"] == "COMPLETED", f"{flow}: {state['message']}\n{log.read_text()[-3000:]}"
            corpus_params = {
                "name": "spokencoco",
                "config_path": str(cfg_path),
                "overrides": corpus_overrides(tmp_path),
            }
            state = run_deployment(http, "corpus", corpus_params, time.monotonic() + 120)
            assert state["type"] == "COMPLETED", f"corpus: {state['message']}\n{log.read_text()[-3000:]}"
            counts = http.post("/artifacts/filter", json={"artifacts": {"key": {"any_": ["corpus-spokencoco-counts"]}}})
            assert counts.json(), "the corpus run's counts artifact"
    finally:
        os.killpg(serving.pid, signal.SIGTERM)
        serving.wait(30)
    assert build_digest(out) == expected
    # The corpus flow's tasks wrote what `voxemoset corpus` writes in one process, and the card.
    direct = load_config(cfg_path, {**corpus_params["overrides"], "out": str(tmp_path / "corpus-direct")})
    run_corpus("spokencoco", direct)
    from_ui, alone = (Path(o) / "corpora" / "spokencoco" for o in (corpus_params["overrides"]["out"], direct.out))
    shards = sorted(p.name for p in (alone / "data").glob("*.parquet"))
    assert len(shards) > 3 and sorted(p.name for p in (from_ui / "data").glob("*.parquet")) == shards
    assert all((from_ui / "data" / n).read_bytes() == (alone / "data" / n).read_bytes() for n in shards)
    assert (from_ui / "README.md").is_file()


def corpus_overrides(root: Path) -> dict:
    """A miniature SpokenCOCO tree and the overrides that write it, two utterances a shard (several tasks)."""
    paths = coco_fixture.build_spokencoco_tree(root / "trees")
    return {"out": str(root / "corpus-from-ui"), "sources.spokencoco": str(paths["spokencoco"]),
            "sources.coco": str(paths["coco"]), "corpora.shard_size": 2}  # fmt: skip


def _markers(out: Path) -> int:
    return sum(len(list((stage_dir(out, name) / "_done").glob("*.json"))) for name in BUILD_CHAIN)


def test_kill_and_resume_at_random_points(server, demo, tmp_path):
    """One output folder, five SIGKILLs at random points of the build (each rerun resumes), then a finish."""
    home, api = server
    cfg_path, expected, n_markers = demo
    env = prefect_env(home, api)
    rng = random.Random(7)
    # Kill points: before any shard is done, then after k finished shards for four random k (any stage).
    points = [0, *sorted(rng.sample(range(1, n_markers), 4))]
    out, killed = tmp_path / "run", []
    for target in points:
        proc = subprocess.Popen(
            _build_cmd(cfg_path, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        start = time.monotonic()
        while proc.poll() is None and time.monotonic() - start < 300:
            if _markers(out) >= target:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        proc.wait()
        killed.append((target, proc.returncode, _markers(out)))
    assert sum(rc == -signal.SIGKILL for _, rc, done in killed if done < n_markers) >= 4, killed
    subprocess.run(_build_cmd(cfg_path, out), env=env, check=True, capture_output=True)
    assert build_digest(out) == expected, f"kill points {killed} changed the dataset"


@pytest.mark.timeout(400)
def test_ray_task_runner_gives_the_same_dataset(demo, tmp_path):
    """As a user without a Prefect server runs it: the build's temporary server, a local Ray cluster."""
    cfg_path, expected, n_markers = demo
    out, home = tmp_path / "ray", tmp_path / "prefect"
    home.mkdir()
    extra_cfg = yaml.safe_load(cfg_path.read_text())
    extra_cfg["orchestration"] = {"task_runner": "ray", "ray_num_cpus": 2}
    ray_cfg = tmp_path / "ray.yaml"
    ray_cfg.write_text(yaml.safe_dump(extra_cfg))
    env = dict(prefect_env(home), PREFECT_LOGGING_LEVEL="INFO")
    # Ray's socket paths must stay under 107 bytes: pytest's tmp_path is too deep.
    with tempfile.TemporaryDirectory(prefix="ray", dir="/tmp") as ray_tmp:
        env["RAY_TMPDIR"] = ray_tmp
        proc = subprocess.run(_build_cmd(ray_cfg, out), env=env, capture_output=True, text=True, timeout=380)
    log = proc.stdout + proc.stderr + (out / "logs" / "voxemoset.log").read_text()  # Prefect's lines: the log file
    assert proc.returncode == 0, log[-6000:]
    assert "Starting temporary server" not in proc.stdout + proc.stderr  # quiet terminal
    assert build_digest(out) == expected
    # Ray workers report to the build's own temporary server rather than each starting one.
    assert log.count("Starting temporary server") == 1, log[-6000:]
    with sqlite3.connect(home / "prefect.db") as db:
        (shard_runs,) = db.execute("SELECT count(*) FROM task_run WHERE name LIKE 'run_shard%'").fetchone()
        states = {s for (s,) in db.execute("SELECT DISTINCT state_type FROM task_run WHERE name LIKE 'run_shard%'")}
    assert (shard_runs, states) == (n_markers, {"COMPLETED"})
