"""Quiet by default, on a real terminal: `voxemoset demo` runs in tmux (a fresh matplotlib cache, so its font
manager has something to say) and the screen holds voxemoset's own lines and progress only; the library chatter is
in the log file whose path the demo printed."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.timeout(1200),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (scripts/setup.sh installs it)"),
]
VOXEMOSET = str(Path(sys.executable).with_name("voxemoset"))
# What libraries printed on a terminal before (issue #23), and what a tqdm bar looks like.
NOISE = ("Writing model shards", "FutureWarning", "DeprecationWarning", "warnings.warn", "funasr version",
         "generated new fontManager", "Task run", "it/s]")  # fmt: skip


def _tmux(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=True).stdout


def test_demo_on_a_terminal_shows_only_its_own_lines(tmp_path):
    out, done, socket = tmp_path / "demo", tmp_path / "done", f"voxemoset-quiet-{time.monotonic_ns()}"
    env = f"MPLCONFIGDIR={shlex.quote(str(tmp_path / 'mpl'))} OMP_NUM_THREADS=1"
    command = f"cd {shlex.quote(str(tmp_path))} && env {env} {VOXEMOSET} demo --out {out}; echo $? > {done}; sleep 600"
    _tmux(socket, "new-session", "-d", "-s", "demo", "-x", "200", "-y", "60", "bash", "-c", command)
    try:
        _tmux(socket, "set-option", "-t", "demo", "history-limit", "50000")
        deadline = time.monotonic() + 1100
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(2)
        screen = _tmux(socket, "capture-pane", "-p", "-J", "-t", "demo", "-S", "-", "-E", "-")
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
    assert done.exists() and done.read_text().strip() == "0", screen[-3000:]
    log = out / "logs" / "voxemoset.log"
    for noise in NOISE:
        assert noise not in screen, (noise, screen[-4000:])
    for own in (f"log: {log}", "demo output:", "build summary", "report:", "cremad: 20 usable clips"):
        assert own in screen, (own, screen[-4000:])
    assert "shards" in screen and "items/s" in screen  # the live progress lines, as they ended
    text = log.read_text()
    assert "funasr version" in text and "FutureWarning" in text  # said, and kept, just not on the terminal
