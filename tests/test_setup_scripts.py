"""The setup scripts' disk check: a disk too full for an environment is one `error:` line before any download."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _need_disk(cwd: Path, venv: str, gb: int) -> subprocess.CompletedProcess:
    script = f'source "{REPO}/scripts/pip_retry.sh"; need_disk {venv} {gb}; echo went-on'
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True)


def test_a_disk_too_full_stops_with_one_error_line(tmp_path):
    proc = _need_disk(tmp_path, ".venv-new", 10**6)
    assert proc.returncode == 1 and "went-on" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: building .venv-new needs about 1000000 GB"), lines


def test_an_existing_environment_or_enough_room_goes_on(tmp_path):
    (tmp_path / ".venv-old" / "bin").mkdir(parents=True)
    python = tmp_path / ".venv-old" / "bin" / "python"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    assert _need_disk(tmp_path, ".venv-old", 10**6).stdout.strip() == "went-on"
    assert _need_disk(tmp_path, ".venv-new", 1).stdout.strip() == "went-on"
