"""Every stage rebuilt alone, in a fresh process, through the default (threads) runner: same bytes as before.

A fresh process is where imports race: there the first MEAD shard thread imports torch for Whisper while the
other shard thread starts its next shard (`partially initialized module 'torch'`, tests/test_import_races.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.demo_chain import build_direct, small_demo
from tests.prefect_server import prefect_env
from voxemoset.config import load_config
from voxemoset.stages import BUILD_CHAIN
from voxemoset.store.digest import build_digest

VOXEMOSET = str(Path(sys.executable).with_name("voxemoset"))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """The demo chain on 2 images per split (12 utterances), built in this process: (its config, its digest)."""
    cfg_path, _ = small_demo(
        tmp_path_factory.mktemp("rebuilds"),
        limit_per_split=2,  # several shards a stage, a quick chain
        # Two clips a shard: while the first MEAD shard's thread imports torch for Whisper, the other thread
        # starts new shards (and pins torch's threads), as on a real tree with many shards.
        references={"shard_size": 2},
        # Two shard threads; one torch thread each (a tiny model on a busy 2-core machine runs 10x slower on two).
        orchestration={"task_runner": "threads", "max_workers": 2, "cpu_threads": 1},
    )
    assert "mead" in load_config(cfg_path).references.corpora  # MEAD ships no transcripts: its shards run Whisper
    return cfg_path, build_direct(cfg_path)


@pytest.mark.parametrize("name", BUILD_CHAIN)
def test_stage_rebuilds_alone_in_a_fresh_process(server, chain, name):
    home, api = server
    cfg_path, digest = chain
    proc = subprocess.run(
        [VOXEMOSET, "stage", name, "-c", str(cfg_path), "--force"],
        env=prefect_env(home, api), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "0 skipped" in proc.stdout  # --force: every shard recomputed, in this process's task threads
    assert build_digest(Path(load_config(cfg_path).out)) == digest
