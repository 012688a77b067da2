"""The setup scripts' make_venv: a disk too full for an environment is one `error:` line before any download."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _make_venv(cwd: Path, venv: str, gb: int) -> subprocess.CompletedProcess:
    script = f'source "{REPO}/scripts/setup_lib.sh"; make_venv {venv} {gb}; echo went-on'
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True)


def test_a_disk_too_full_stops_with_one_error_line(tmp_path):
    proc = _make_venv(tmp_path, ".venv-new", 10**6)
    assert proc.returncode == 1 and "went-on" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: building .venv-new needs about 1000000 GB"), lines
    assert not (tmp_path / ".venv-new").exists()


def test_an_existing_environment_is_kept_and_a_missing_one_made_when_there_is_room(tmp_path):
    (tmp_path / ".venv-old" / "bin").mkdir(parents=True)
    python = tmp_path / ".venv-old" / "bin" / "python"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    assert _make_venv(tmp_path, ".venv-old", 10**6).stdout.strip() == "went-on"
    assert python.read_text() == "#!/bin/sh\n"
    proc = _make_venv(tmp_path, ".venv-new", 1)
    assert proc.stdout.strip() == "went-on", proc.stderr
    assert subprocess.run([tmp_path / ".venv-new" / "bin" / "python", "-c", "import sys; print(sys.prefix)"],
                          capture_output=True, text=True).stdout.strip() == str(tmp_path / ".venv-new")  # fmt: skip
