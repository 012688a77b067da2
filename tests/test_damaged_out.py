"""Damaged state in an output folder: damaged shards and markers, a garbage manifest, two runs on one folder."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.builders import make_config
from voxemoset.errors import UserError
from voxemoset.stages.images import ImagesStage
from voxemoset.store.digest import build_digest
from voxemoset.store.lock import LOCK_NAME, out_lock
from voxemoset.store.runner import (
    Plan,
    ShardJob,
    ShardOutput,
    StageBase,
    list_shards,
    run_stage,
    stage_dir,
)
from voxemoset.store.upstream import each_shard


def _config(out: Path, emoset: Path):
    return make_config(out, emoset, images={"shard_size": 10})


def _snapshot(out: Path) -> dict[str, bytes]:
    folder = stage_dir(out, "images")
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def undisturbed(emoset_root, tmp_path_factory) -> dict[str, bytes]:
    """The images stage's files (shards, rejects, markers) from one uninterrupted run."""
    out = tmp_path_factory.mktemp("undisturbed")
    run_stage(ImagesStage(), _config(out, emoset_root), out)
    return _snapshot(out)


@pytest.fixture
def built(emoset_root, tmp_path):
    """A fresh finished images stage, to damage."""
    out = tmp_path / "out"
    cfg = _config(out, emoset_root)
    run_stage(ImagesStage(), cfg, out)
    return out, cfg


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _flip(p: Path) -> None:
    """Flip one byte mid-file: size, footer and row count still match; only the hash can tell."""
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


DAMAGE = {
    "truncated": ("{name}.parquet", _truncate, "truncated parquet"),
    "emptied": ("{name}.parquet", _empty, "empty file"),
    "bit-flipped": ("{name}.parquet", _flip, "sha256 mismatch"),
    "rejects truncated": ("rejects/{name}.parquet", _truncate, "rejects file: truncated parquet"),
}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_damaged_shard_is_recomputed_byte_identical(built, undisturbed, how, caplog):
    out, cfg = built
    name = list_shards(stage_dir(out, "images"))[0].stem
    rel, damage, why = DAMAGE[how]
    damage(stage_dir(out, "images") / rel.format(name=name))
    with caplog.at_level(logging.WARNING, logger="voxemoset"):
        summary = run_stage(ImagesStage(), cfg, out)
    assert summary["computed"] == 1
    assert _snapshot(out) == undisturbed
    lines = [r.getMessage() for r in caplog.records if r.name == "voxemoset"]
    assert len(lines) == 1 and lines[0].startswith(f"images: shard {name} is damaged (")
    assert why in lines[0] and lines[0].endswith("; recomputing")


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"[1, 2]", b'{"key": '], ids=["bytes", "list", "cut"])
def test_garbage_marker_means_not_done(built, undisturbed, content):
    out, cfg = built
    name = list_shards(stage_dir(out, "images"))[0].stem
    (stage_dir(out, "images") / "_done" / f"{name}.json").write_bytes(content)
    assert run_stage(ImagesStage(), cfg, out)["computed"] == 1
    assert _snapshot(out) == undisturbed


def test_marker_from_an_older_version_is_recomputed(built, undisturbed):
    out, cfg = built
    for marker in (stage_dir(out, "images") / "_done").glob("*.json"):
        data = json.loads(marker.read_text())
        del data["files"]  # what markers held before they recorded sizes and hashes
        marker.write_text(json.dumps(data))
    summary = run_stage(ImagesStage(), cfg, out)
    assert summary["computed"] == summary["shards"]
    assert _snapshot(out) == undisturbed


class CountsStage(StageBase):
    """A stage reading the images stage shard by shard, as captions reads it."""

    name = "counts"
    version = "1"
    inputs = ("images",)

    def plan(self, config, upstream) -> Plan:
        return Plan(each_shard(self, upstream, "images", {}, None))

    def process(self, job: ShardJob, model, config) -> ShardOutput:
        ids = pq.read_table(job.inputs, columns=["image_id"]).column("image_id")
        return ShardOutput(pa.table({"image_id": ids}))


@pytest.mark.parametrize("how", ["truncated", "bit-flipped", "rejects truncated"])
def test_damaged_upstream_shard_is_one_user_error(built, how):
    out, cfg = built
    name = list_shards(stage_dir(out, "images"))[-1].stem
    rel, damage, why = DAMAGE[how]
    damage(stage_dir(out, "images") / rel.format(name=name))
    with pytest.raises(UserError) as e:
        run_stage(CountsStage(), cfg, out)
    msg = str(e.value)
    assert "\n" not in msg and f"images shard {name}" in msg and why in msg
    assert "voxemoset stage images -c" in msg
    # What the message says to do is enough: the images stage recomputes the shard, then counts reads it.
    assert run_stage(ImagesStage(), cfg, out)["computed"] == 1
    assert run_stage(CountsStage(), cfg, out)["rows"] == 39


def test_upstream_shard_without_a_marker_is_still_read_if_its_footer_reads(built):
    out, cfg = built
    shards = list_shards(stage_dir(out, "images"))
    (stage_dir(out, "images") / "_done" / f"{shards[0].stem}.json").unlink()
    assert run_stage(CountsStage(), cfg, out)["rows"] == 39
    _truncate(shards[0])
    with pytest.raises(UserError, match=f"images shard {shards[0].stem} \\(parquet footer unreadable\\)"):
        run_stage(CountsStage(), cfg, out)


@pytest.mark.parametrize(
    "content",
    [random.Random(0).randbytes(300), b"\xff\xfe", b"[1,2]", b'{"stages": 3}'],
    ids=["random", "bom", "list", "no-stages"],
)
def test_garbage_manifest_is_rebuilt(built, content, caplog):
    out, cfg = built
    run_stage(CountsStage(), cfg, out)
    manifest = out / "manifest.json"
    manifest.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="voxemoset"):
        summary = run_stage(ImagesStage(), cfg, out)
    assert summary["computed"] == 0
    stages = json.loads(manifest.read_text())["stages"]
    assert stages["images"] == summary
    # The other stage's entry comes back from its markers.
    assert stages["counts"] == {"shards": summary["shards"], "rows": 39, "rejects": {}}
    assert any("manifest.json" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)


HOLD = """
import sys, time
from pathlib import Path
from voxemoset.store.lock import out_lock
with out_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock on `tmp_path / "out"` until killed."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield out, proc
    finally:
        proc.kill()
        proc.wait()


def test_second_run_on_a_held_folder_is_refused(holder, emoset_root, tmp_path):
    out, proc = holder
    with pytest.raises(UserError) as e:
        run_stage(ImagesStage(), _config(out, emoset_root), out)
    assert str(e.value) == (
        f"{out} is in use by another voxemoset run (pid {proc.pid}); wait for it or use another out folder"
    )
    assert not stage_dir(out, "images").exists()  # refused before planning anything
    # The same from the CLI, in a second process: one line, no traceback.
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"out": str(out), "sources": {"emoset": str(emoset_root)}}))
    cli = subprocess.run(
        [sys.executable, "-m", "voxemoset.cli", "stage", "images", "--direct", "-c", str(cfg)],
        capture_output=True,
        text=True,
    )
    lines = [ln for ln in cli.stderr.splitlines() if ln.strip()]
    assert cli.returncode == 1 and len(lines) == 1 and f"(pid {proc.pid})" in lines[0], cli.stderr


def test_a_killed_holder_leaves_no_lock_behind(holder, emoset_root):
    out, proc = holder
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / LOCK_NAME).is_file()  # the file stays; the kernel dropped the lock with the process
    assert run_stage(ImagesStage(), _config(out, emoset_root), out)["rows"] == 39


def test_waiting_run_starts_when_the_holder_ends(holder):
    out, proc = holder
    got = threading.Event()

    def wait_for_lock() -> None:
        with out_lock(out, wait=True):
            got.set()

    waiter = threading.Thread(target=wait_for_lock, daemon=True)
    waiter.start()
    time.sleep(0.5)
    assert not got.is_set()
    proc.kill()
    waiter.join(timeout=10)
    assert got.is_set()


def test_lock_is_reentrant_in_one_process_and_released_after(built, emoset_root):
    out, cfg = built
    with out_lock(out):
        # A build holds the folder, then runs stages and worker threads in this same process.
        assert run_stage(ImagesStage(), cfg, out)["computed"] == 0
        worker = threading.Thread(target=lambda: run_stage(CountsStage(), cfg, out))
        worker.start()
        worker.join()
        assert (out / "manifest.json").read_text().count('"counts"') == 1
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
    # Released at the outermost exit: another process can take it now.
    other = subprocess.run(
        [sys.executable, "-c", HOLD.replace("time.sleep(120)", "pass"), str(out)], capture_output=True, text=True
    )
    assert other.returncode == 0 and other.stdout.strip() == "held", other.stderr


def test_lock_file_is_not_part_of_the_build(built, undisturbed):
    out, _ = built
    assert (out / LOCK_NAME).is_file()
    digest = build_digest(out)
    (out / LOCK_NAME).unlink()
    assert build_digest(out) == digest
    assert _snapshot(out) == undisturbed
