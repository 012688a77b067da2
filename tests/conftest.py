"""Shared fixtures: offline always, miniature corpora and tiny models built once per session under a temp folder
(builders.py holds the helpers: a config builder and stage readers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def emoset_root(tmp_path_factory) -> Path:
    """A miniature EmoSet tree (read-only for tests)."""
    from voxemoset.fixtures.emoset import build_emoset_tree

    root = tmp_path_factory.mktemp("emoset") / "EmoSet"
    build_emoset_tree(root)
    return root


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Every tiny model, written once per test run: {llava_onevision, f5tts, vocos, whisper, emotion2vec, clip: folder}.

    Read-only: a test that changes model files in place writes its own copy.
    """
    from voxemoset.models.tiny import write_all

    return write_all(tmp_path_factory.mktemp("tiny-models"))


def write_config(path: Path, data: dict) -> Path:
    """Write a YAML config for a test."""
    import yaml

    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory):
    """`voxemoset demo` run once per session in a fresh folder (it ends by writing the report): (folder, process).

    Read-only for tests: test_demo and test_table1 share it, the slowest build in the suite.
    """
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("demo") / "demo"
    voxemoset = str(Path(sys.executable).with_name("voxemoset"))
    proc = subprocess.run([voxemoset, "demo", "--out", str(out)], capture_output=True, text=True, cwd=out.parent)
    return out, proc


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real Prefect server (embedded SQLite) for one test module: (its PREFECT_HOME, its API URL)."""
    from tests.prefect_server import prefect_server

    home = tmp_path_factory.mktemp("prefect")
    with prefect_server(home) as api:
        yield home, api


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest single-threaded; two threads on a busy 2-core machine are 10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
