"""Failures on the flow path: every failure ends in one `error:` line without retrying what cannot pass,
the temporary server dies with the CLI, one run per output folder. (Stage deployments run from the UI: in
test_orchestration.py's deployment test.)"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from flows.transient import is_transient
from tests.prefect_server import prefect_env
from tests.processes import child_pids, is_alive, listening
from voxemoset.demo import write_demo_inputs
from voxemoset.errors import MissingWeightsError, UserError, describe

VOXEMOSET = str(Path(sys.executable).with_name("voxemoset"))
_PR_CAPBSET_DROP, _CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 24, 1, 2


@pytest.fixture(scope="module")
def demo_cfg(tmp_path_factory) -> Path:
    """Demo inputs cut to 3 images per split, one image per shard (as in test_orchestration.py)."""
    cfg_path = write_demo_inputs(tmp_path_factory.mktemp("demo"))
    data = yaml.safe_load(cfg_path.read_text())
    data["images"].update(shard_size=1, limit_per_split=3)
    cfg_path.write_text(yaml.safe_dump(data))
    return cfg_path


def _without_root_powers():
    """A preexec_fn making a root child obey file permissions (root ignores them); None for other users.

    Dropping the DAC capabilities from the bounding set beats switching to `nobody`, who cannot reach an
    interpreter under /root: the child keeps uid 0 and so still owns (and may read) the test's files.
    """
    if os.geteuid() != 0:
        return None
    prctl = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl

    def drop() -> None:
        for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
            if prctl(_PR_CAPBSET_DROP, cap) != 0:
                os._exit(97)

    return drop


def _cli(args: list[str], env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `voxemoset ARGS` as a user whom permissions bind; stdout and stderr kept apart."""
    return subprocess.run([VOXEMOSET, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_without_root_powers())  # fmt: skip


def _assert_one_error_line(proc: subprocess.CompletedProcess, *wanted: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert lines and lines[-1].startswith("error: "), proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    for text in wanted:
        assert text in lines[-1], lines[-1]
    return lines[-1]


def _shard_runs(home: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(home / "prefect.db") as db:
        return db.execute("SELECT state_type, run_count FROM task_run WHERE name LIKE 'run_shard%'").fetchall()


# --- one error line, no retry of what cannot pass ----------------------------------------------------------------


def test_unwritable_out_is_one_error_line_and_never_retried(demo_cfg, tmp_path):
    env = prefect_env(tmp_path / "prefect")
    locked_out = tmp_path / "locked-out"
    locked_out.mkdir(mode=0o555)
    proc = _cli(["build", "-c", str(demo_cfg), "--out", str(locked_out)], env)
    _assert_one_error_line(proc, "permission denied", str(locked_out))
    assert "Stopping temporary server" not in proc.stderr

    # The folder is writable but a stage's is not: its shard tasks fail with PermissionError, each once.
    out = tmp_path / "out"
    (out / "stages" / "images").mkdir(parents=True)
    (out / "stages" / "images").chmod(0o555)
    proc = _cli(["build", "-c", str(demo_cfg), "--out", str(out)], env)
    _assert_one_error_line(proc, "permission denied")
    runs = _shard_runs(tmp_path / "prefect")
    assert ("FAILED", 1) in runs and all(n == 1 for _, n in runs), runs

    debug = _cli(["--debug", "build", "-c", str(demo_cfg), "--out", str(locked_out)], env)
    assert "Traceback" in debug.stderr and debug.stderr.strip().splitlines()[-1].startswith("error: permission")


def test_corrupt_checkpoint_is_one_error_line_and_never_retried(demo_cfg, tmp_path):
    models = tmp_path / "f5tts"
    shutil.copytree(demo_cfg.parent / "models" / "f5tts", models)
    (models / "model.safetensors").write_bytes(os.urandom(4096))
    data = yaml.safe_load(demo_cfg.read_text())
    data["speech"]["checkpoint"] = str(models)
    cfg = tmp_path / "corrupt.yaml"
    cfg.write_text(yaml.safe_dump(data))
    home = tmp_path / "prefect"
    proc = _cli(["build", "-c", str(cfg), "--out", str(tmp_path / "out")], prefect_env(home))
    _assert_one_error_line(proc)
    runs = _shard_runs(home)
    assert ("FAILED", 1) in runs and all(n == 1 for _, n in runs), runs


# --- orphans: the temporary server dies with the CLI; a later run marks the dead run CRASHED -----------------------


def _server_child(pid: int, deadline: float) -> tuple[int, int]:
    """The CLI's temporary server: its pid and port, once it runs."""
    while time.monotonic() < deadline:
        for kid in child_pids(pid):
            args = Path(f"/proc/{kid}/cmdline").read_bytes().decode().split("\0")
            if "uvicorn" in args and "--port" in args:
                return kid, int(args[args.index("--port") + 1])
        time.sleep(0.1)
    raise AssertionError("the build started no temporary server")


def _wait_running_flow_run(api: str, deadline: float) -> None:
    body = {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}}
    while time.monotonic() < deadline:
        try:
            if httpx.post(f"{api}/flow_runs/filter", json=body, timeout=5).json():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("no flow run started")


def test_killed_build_leaves_no_server_and_its_run_is_marked_crashed(demo_cfg, tmp_path):
    home, out = tmp_path / "prefect", tmp_path / "out"
    env = prefect_env(home)
    proc = subprocess.Popen([VOXEMOSET, "build", "-c", str(demo_cfg), "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    server_pid = None
    try:
        deadline = time.monotonic() + 120
        server_pid, port = _server_child(proc.pid, deadline)
        _wait_running_flow_run(f"http://127.0.0.1:{port}/api", deadline)
        proc.kill()  # the main process only, as the OOM killer does
        proc.wait()
        gone_by = time.monotonic() + 10
        while (is_alive(server_pid) or listening(port)) and time.monotonic() < gone_by:
            time.sleep(0.1)
        assert not is_alive(server_pid) and not listening(port), "the temporary server outlived its build"
    finally:
        if proc.poll() is None:
            proc.kill()
        if server_pid and is_alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)

    again = subprocess.run([VOXEMOSET, "stage", "images", "-c", str(demo_cfg), "--out", str(out)], env=env,
                           capture_output=True, text=True, timeout=180)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    with sqlite3.connect(home / "prefect.db") as db:
        states = db.execute(
            "SELECT name, state_type FROM flow_run WHERE tags LIKE ?", (f'%"voxemoset-pid:{proc.pid}"%',)
        )
        states = dict(states.fetchall())
    assert states and set(states.values()) == {"CRASHED"}, states


# --- one run per output folder -----------------------------------------------------------------------------------


def _holds_flock(pid: int, path: Path) -> bool:
    """True if `pid` holds a flock on `path` (read from /proc/locks, which takes no lock itself)."""
    try:
        inode = path.stat().st_ino
    except FileNotFoundError:
        return False
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" not in fields and fields[1] == "FLOCK" and fields[4] == str(pid):
            if int(fields[5].rsplit(":", 1)[1]) == inode:
                return True
    return False


def test_two_runs_on_one_out_folder(server, demo_cfg, tmp_path):
    home, api = server
    env, out = prefect_env(home, api), tmp_path / "out"
    cmd = [VOXEMOSET, "stage", "images", "-c", str(demo_cfg), "--out", str(out), "--force"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Catch the first run holding the folder, and pause it there: the second then meets the lock for sure.
        while not _holds_flock(first.pid, out / ".voxemoset.lock"):
            assert first.poll() is None, "the first run finished without ever locking its out folder"
            time.sleep(0.005)
        first.send_signal(signal.SIGSTOP)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    finally:
        first.send_signal(signal.SIGCONT)
    stdout, stderr = first.communicate(timeout=180)
    assert first.returncode == 0, stderr[-3000:]
    _assert_one_error_line(second, f"pid {first.pid}", str(out))


# --- the pieces, table-driven ------------------------------------------------------------------------------------


class _Corrupt(UserError):
    def __init__(self, path: str, why: str):
        super().__init__(f"{path}: {why}")
        self.path = path


@pytest.mark.parametrize(
    "exc",
    [MissingWeightsError("f5", "/m", "hf download x"), _Corrupt("/m/model.pt", "not a checkpoint"), UserError("x")],
)
def test_user_errors_cross_process_boundaries(exc):
    """A shard task's error reaches the CLI through pickling (Ray): still the same type and message."""
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc) and back.__dict__ == exc.__dict__


def _caused(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (httpx.ConnectError("refused"), True),
        (OSError(11, "Resource temporarily unavailable"), True),
        (OSError(16, "Device or resource busy"), True),
        (_caused(RuntimeError("load failed"), ConnectionRefusedError()), True),
        (PermissionError(13, "Permission denied", "/out"), False),
        (OSError(28, "No space left on device"), False),
        (FileNotFoundError(2, "No such file", "/x"), False),
        (RuntimeError("PytorchStreamReader failed reading zip archive"), False),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), False),
        (UserError("bad config"), False),
        (ValueError("bad shard"), False),
    ],
)
def test_only_transient_errors_are_retried(exc, transient):
    assert is_transient(exc) is transient


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (PermissionError(13, "Permission denied", "/out/x"), "permission denied: /out/x"),
        (OSError(28, "No space left on device", "/out/y"), "disk full writing /out/y"),
        (UserError("two\nlines"), "two lines"),
        (
            ConnectionRefusedError(111, "Connection refused"),
            "cannot connect to a server ([Errno 111] Connection "
            "refused); is it running? (for Prefect: PREFECT_API_URL)",
        ),
        (KeyError("k"), "KeyError: 'k' (unexpected; rerun with --debug for the traceback)"),
    ],
)
def test_describe_is_one_line(exc, line):
    assert describe(exc) == line
