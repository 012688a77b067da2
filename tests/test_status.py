"""`voxemoset status` and `build --dry-run` on the demo build, in fresh processes: nothing pending after the build;
a changed gate threshold names itself and makes gates and dataset stale, nothing else; and nothing is computed or
written either way."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.timeout(1200)


def _voxemoset(*args: str) -> str:
    proc = subprocess.run([str(Path(sys.executable).with_name("voxemoset")), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _tree(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def demo(demo_build, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(demo output, its config, the same config with gates.min_dnsmos_ovrl 0.5)."""
    out, proc = demo_build
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = yaml.safe_load((out / "demo.yaml").read_text())
    assert config["gates"].get("min_dnsmos_ovrl") is None
    changed = tmp_path_factory.mktemp("status") / "changed.yaml"
    changed.write_text(yaml.safe_dump(config | {"gates": config["gates"] | {"min_dnsmos_ovrl": 0.5}}))
    return out, out / "demo.yaml", changed


def test_a_finished_build_has_nothing_pending(demo):
    out, config, _ = demo
    before = _tree(out)
    statuses = json.loads(_voxemoset("status", "-c", str(config), "--json"))
    assert [s["stage"] for s in statuses] == ["images", "captions", "references", "speech", "gates", "dataset"]
    for s in statuses:
        assert (s["pending"], s["stale"], s["error"]) == (0, 0, None) and s["done"] > 0, s
    assert "nothing pending: the build is up to date" in _voxemoset("status", "-c", str(config))
    assert _tree(out) == before  # computes and writes nothing


def test_a_changed_threshold_names_itself_and_stales_gates_and_dataset_only(demo):
    out, _, changed = demo
    before = _tree(out)
    statuses = {s["stage"]: s for s in json.loads(_voxemoset("status", "-c", str(changed), "--json"))}
    stale = {name for name, s in statuses.items() if s["stale"] or s["pending"]}
    assert stale == {"gates", "dataset"}
    gates, dataset = statuses["gates"], statuses["dataset"]
    assert gates["changes"] == ["gates.min_dnsmos_ovrl null → 0.5"]
    assert gates["stale"] == gates["reuses_work"] > 0  # the scored attempts outlive a threshold
    assert dataset["waits_on"] == ["gates"] and dataset["done"] == 0
    # The estimate: the mean recorded seconds of the stage's shards, times the shards to redo.
    timings = [json.loads(p.read_text()) for p in (out / "logs" / "timings" / "gates").glob("*.json")]
    seconds = [t["seconds"] for t in timings]
    assert len(seconds) == gates["stale"]
    assert gates["estimate_s"] == pytest.approx(sum(seconds) / len(seconds) * gates["stale"], abs=0.1)
    # `build --dry-run` shows the same, and builds nothing.
    printed = _voxemoset("build", "-c", str(changed), "--dry-run")
    assert "gates: gates.min_dnsmos_ovrl null → 0.5" in printed
    assert "dataset: stale because its inputs change first: gates" in printed
    assert "a build would recompute: gates, dataset" in printed
    assert _tree(out) == before
