"""Config validation and the command line contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_config
from voxemoset.config import load_config, parse_config
from voxemoset.errors import UserError

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("demo", "build", "stage", "check", "weights", "report", "publish", "deploy", "tiny-models", "encode",
            "train", "generate", "evaluate", "corpus")  # fmt: skip


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voxemoset.cli", *args], capture_output=True, text=True)


def test_minimal_config_names_only_the_fixed_keys(tmp_path):
    cfg = load_config(write_config(tmp_path / "c.yaml", {"out": "x", "sources": {"emoset": "/data/E"}}))
    assert cfg.out == Path("x") and cfg.sources.emoset == Path("/data/E") and cfg.images.shard_size == 1000


def test_example_config_is_valid():
    cfg = load_config(REPO / "configs" / "example.yaml")
    assert cfg.sources.mead == Path("/data/MEAD")


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"sources": {"emost": "/x"}}, "sources.emost: extra inputs are not permitted"),
        ({"images": {"shard_size": 0}}, "images.shard_size"),
        ({"typo": 1}, "typo: extra inputs are not permitted"),
    ],
)
def test_bad_config_is_one_clear_error(data, needle):
    with pytest.raises(UserError, match=needle.replace(".", r"\.")):
        parse_config(data)


def test_overrides_use_dotted_keys():
    assert parse_config({}, {"images.shard_size": 7}).images.shard_size == 7


def test_help_lists_every_command():
    proc = _cli("--help")
    assert proc.returncode == 0
    for name in COMMANDS:
        assert name in proc.stdout


def test_missing_config_path_is_one_line_nonzero(tmp_path):
    proc = _cli("stage", "images", "-c", str(tmp_path / "nope.yaml"))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: config file not found: {tmp_path / 'nope.yaml'}"


def test_unknown_stage_lists_valid_ones(tmp_path):
    proc = _cli("stage", "imagez", "-c", str(write_config(tmp_path / "c.yaml", {})))
    assert proc.returncode != 0 and "valid stages: images, captions, references" in proc.stderr


def test_missing_source_path_is_one_line(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", {"out": str(tmp_path), "sources": {"emoset": str(tmp_path / "none")}})
    proc = _cli("stage", "images", "-c", str(cfg))
    assert proc.returncode != 0 and proc.stderr.strip().startswith("error: sources.emoset: folder not found")


def test_stage_publish_without_a_repo_is_one_line(tmp_path):
    proc = _cli("stage", "publish", "-c", str(write_config(tmp_path / "c.yaml", {"out": str(tmp_path)})))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: stage publish needs publish.repo_id")
